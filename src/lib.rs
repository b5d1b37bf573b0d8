//! rzk: a ZooKeeper-compatible coordination service.
//!
//! # Architecture
//!
//! rzk follows Apache ZooKeeper's own structure, role by role:
//!
//! - [`jute`] encodes and decodes ZooKeeper's records (wire, txn log, snapshots).
//! - [`proto`] names the protocol's integers (opcodes, error codes, ids) and framing.
//! - [`persistence`] owns ZooKeeper's on-disk formats: txn logs (memory-mapped writer for the
//!   sync stage), snapshots, the tree digest, epoch files and purging; it knows no `DataTree`.
//! - [`limits`] names every bound (buffer sizes, timeouts, defaults) with its reason.
//! - [`config`] turns zoo.cfg and `-D` system properties into a valid [`config::ServerConfig`].
//! - [`cli`] is the `rzk-server` command line (Apache's two argument forms), as functions.
//! - [`quorum`] is the ensemble side: votes and fast leader election, the Zab leader and
//!   learner cores and their wire formats, and the quorum peer's role loop with the leader,
//!   learner and LOOKING (not serving / read-only) shells around the server's pipeline.
//! - [`server`] runs the server from a `ServerConfig`: standalone, or hands a configuration
//!   with `server.N` lines to [`quorum::peer::run`].
//! - [`tls`] sets up rustls from ZooKeeper's key and trust stores for either end, and runs
//!   it over non-blocking mio streams; [`sasl`] is JAAS parsing and DIGEST-MD5 (both ends).
//! - [`client`] is a ClientCnxn-style client library (send thread, event thread) used by
//!   `rzk-cli` and `rzk-bench`.
#![warn(missing_docs)]

pub mod cli;
pub mod client;
pub mod config;
pub mod fasthash;
pub mod jute;
pub mod limits;
pub mod persistence;
pub mod proto;
pub mod quorum;
pub mod sasl;
pub mod server;
pub mod tls;
