//! The server as a quorum role sees it (what ZooKeeper's `LeaderZooKeeperServer`,
//! `FollowerZooKeeperServer`, `ObserverZooKeeperServer` and `ReadOnlyZooKeeperServer` take
//! from `ZooKeeperServer`): the one named interface the quorum peer uses. A role builds its
//! client pipeline ([`Pipeline`] with its [`Stages`]) over [`Shared`] state, recovers,
//! truncates and snapshots the [`database`], streams fuzzy snapshots ([`write_fuzzy`]), and
//! reports fatal errors ([`FatalTx`]). Nothing here knows about Zab.

pub use super::acl::AuthInfo;
pub use super::cleanup::PurgeTask;
pub use super::critical::{Fatal, FatalTx};
pub use super::database::{
    self, recover, take_snapshot, truncate, write_fuzzy, LogSink, Recovered,
};
pub use super::datatree::DataTree;
pub use super::pipeline::{Pipeline, PipelineSpec, Stages};
pub use super::processor::sync::TxnSink;
pub use super::processor::{Kind, Origin, Outbound, Request};
pub use super::session::SessionTracker;
pub use super::{session_tracker, ServerMode, Shared};
