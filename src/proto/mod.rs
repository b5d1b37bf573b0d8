//! Protocol vocabulary: ids, opcodes, error codes, watch constants and create modes, with
//! ZooKeeper's integer values (wire-protocol.md §4, §5, §8, §9; data-model.md §2).
//!
//! Pure definitions; no I/O.

pub mod frame;
pub mod path;

use std::fmt;

/// A transaction id: epoch in the high 32 bits, counter in the low 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Zxid(pub i64);

impl Zxid {
    /// Builds a zxid from an epoch and a counter.
    pub fn new(epoch: u32, counter: u32) -> Zxid {
        Zxid(((epoch as i64) << 32) | counter as i64)
    }
    /// The epoch half.
    pub fn epoch(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// The counter half.
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Display for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A session id (signed, as Java has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SessionId(pub i64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A server id: the `N` of `server.N` in zoo.cfg and the number in `dataDir/myid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServerId(pub u64);

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Reserved xids [ClientCnxn.java].
pub mod xid {
    /// Watch notification (server to client).
    pub const NOTIFICATION: i32 = -1;
    /// Ping.
    pub const PING: i32 = -2;
    /// Auth packet.
    pub const AUTH: i32 = -4;
    /// setWatches / setWatches2.
    pub const SET_WATCHES: i32 = -8;
}

macro_rules! int_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant = $value),* }

        impl $name {
            /// The value for a wire integer, if it is one of ours.
            pub fn from_i32(v: i32) -> Option<$name> {
                match v {
                    $(x if x == $value => Some($name::$variant),)*
                    _ => None,
                }
            }
            /// The wire integer.
            pub fn code(self) -> i32 {
                self as i32
            }
        }
    };
}

int_enum! {
    /// Request types [ZooDefs.OpCode].
    pub enum OpCode {
        /// Server-to-client notification.
        Notification = 0,
        /// create.
        Create = 1,
        /// delete.
        Delete = 2,
        /// exists.
        Exists = 3,
        /// getData.
        GetData = 4,
        /// setData.
        SetData = 5,
        /// getACL.
        GetAcl = 6,
        /// setACL.
        SetAcl = 7,
        /// getChildren.
        GetChildren = 8,
        /// sync.
        Sync = 9,
        /// ping.
        Ping = 11,
        /// getChildren2.
        GetChildren2 = 12,
        /// check (inside multi only).
        Check = 13,
        /// multi.
        Multi = 14,
        /// create2.
        Create2 = 15,
        /// reconfig.
        Reconfig = 16,
        /// checkWatches.
        CheckWatches = 17,
        /// removeWatches.
        RemoveWatches = 18,
        /// createContainer.
        CreateContainer = 19,
        /// deleteContainer (internal).
        DeleteContainer = 20,
        /// createTTL.
        CreateTtl = 21,
        /// multiRead.
        MultiRead = 22,
        /// auth.
        Auth = 100,
        /// setWatches.
        SetWatches = 101,
        /// sasl.
        Sasl = 102,
        /// getEphemerals.
        GetEphemerals = 103,
        /// getAllChildrenNumber.
        GetAllChildrenNumber = 104,
        /// setWatches2.
        SetWatches2 = 105,
        /// addWatch.
        AddWatch = 106,
        /// whoAmI.
        WhoAmI = 107,
        /// createSession (internal).
        CreateSession = -10,
        /// closeSession.
        CloseSession = -11,
        /// error txn / multi error result.
        Error = -1,
    }
}

impl OpCode {
    /// Whether this request type changes state (goes through a txn) [Request.isQuorum].
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    }

    /// ZooKeeper's name for the op, as logs and `cons` print it.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Notification => "notification",
            OpCode::Create => "create",
            OpCode::Delete => "delete",
            OpCode::Exists => "exists",
            OpCode::GetData => "getData",
            OpCode::SetData => "setData",
            OpCode::GetAcl => "getACL",
            OpCode::SetAcl => "setACL",
            OpCode::GetChildren => "getChildren",
            OpCode::Sync => "sync",
            OpCode::Ping => "ping",
            OpCode::GetChildren2 => "getChildren2",
            OpCode::Check => "check",
            OpCode::Multi => "multi",
            OpCode::Create2 => "create2",
            OpCode::Reconfig => "reconfig",
            OpCode::CheckWatches => "checkWatches",
            OpCode::RemoveWatches => "removeWatches",
            OpCode::CreateContainer => "createContainer",
            OpCode::DeleteContainer => "deleteContainer",
            OpCode::CreateTtl => "createTtl",
            OpCode::MultiRead => "multiRead",
            OpCode::Auth => "auth",
            OpCode::SetWatches => "setWatches",
            OpCode::Sasl => "sasl",
            OpCode::GetEphemerals => "getEphemerals",
            OpCode::GetAllChildrenNumber => "getAllChildrenNumber",
            OpCode::SetWatches2 => "setWatches2",
            OpCode::AddWatch => "addWatch",
            OpCode::WhoAmI => "whoAmI",
            OpCode::CreateSession => "createSession",
            OpCode::CloseSession => "closeSession",
            OpCode::Error => "error",
        }
    }
}

int_enum! {
    /// Result codes [KeeperException.Code].
    pub enum ErrorCode {
        /// Success.
        Ok = 0,
        /// Range marker.
        SystemError = -1,
        /// Ops after a failed op in a multi.
        RuntimeInconsistency = -2,
        /// Data inconsistency.
        DataInconsistency = -3,
        /// Client side: connection lost.
        ConnectionLoss = -4,
        /// Request could not be decoded.
        MarshallingError = -5,
        /// Unknown opcode or feature off.
        Unimplemented = -6,
        /// Client side: operation timeout.
        OperationTimeout = -7,
        /// Invalid arguments.
        BadArguments = -8,
        /// Unknown session (internal).
        UnknownSession = -12,
        /// reconfig: no quorum for the new config.
        NewConfigNoQuorum = -13,
        /// reconfig in progress.
        ReconfigInProgress = -14,
        /// Range marker.
        ApiError = -100,
        /// Node does not exist.
        NoNode = -101,
        /// Not authorised.
        NoAuth = -102,
        /// Version mismatch.
        BadVersion = -103,
        /// Ephemerals cannot have children.
        NoChildrenForEphemerals = -108,
        /// Node exists.
        NodeExists = -110,
        /// Node has children.
        NotEmpty = -111,
        /// Session expired.
        SessionExpired = -112,
        /// Client side: invalid callback.
        InvalidCallback = -113,
        /// Invalid ACL.
        InvalidAcl = -114,
        /// Authentication failed.
        AuthFailed = -115,
        /// Session moved to another server.
        SessionMoved = -118,
        /// Write on a read-only server.
        NotReadOnly = -119,
        /// Ephemeral on a local session.
        EphemeralOnLocalSession = -120,
        /// No such watcher.
        NoWatcher = -121,
        /// Client side: request timeout.
        RequestTimeout = -122,
        /// reconfig disabled.
        ReconfigDisabled = -123,
        /// SASL required.
        SessionClosedRequireSaslAuth = -124,
        /// Hard quota exceeded.
        QuotaExceeded = -125,
        /// Request throttled.
        ThrottledOp = -127,
    }
}

impl ErrorCode {
    /// Java's `KeeperException.Code` name in lower case words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorCode::Ok => "ok",
            ErrorCode::SystemError => "system error",
            ErrorCode::RuntimeInconsistency => "runtime inconsistency",
            ErrorCode::DataInconsistency => "data inconsistency",
            ErrorCode::ConnectionLoss => "connection loss",
            ErrorCode::MarshallingError => "marshalling error",
            ErrorCode::Unimplemented => "unimplemented",
            ErrorCode::OperationTimeout => "operation timeout",
            ErrorCode::BadArguments => "bad arguments",
            ErrorCode::UnknownSession => "unknown session",
            ErrorCode::NewConfigNoQuorum => "new config no quorum",
            ErrorCode::ReconfigInProgress => "reconfig in progress",
            ErrorCode::ApiError => "api error",
            ErrorCode::NoNode => "no node",
            ErrorCode::NoAuth => "not authenticated",
            ErrorCode::BadVersion => "bad version",
            ErrorCode::NoChildrenForEphemerals => "no children for ephemerals",
            ErrorCode::NodeExists => "node exists",
            ErrorCode::NotEmpty => "directory not empty",
            ErrorCode::SessionExpired => "session expired",
            ErrorCode::InvalidCallback => "invalid callback",
            ErrorCode::InvalidAcl => "invalid acl",
            ErrorCode::AuthFailed => "auth failed",
            ErrorCode::SessionMoved => "session moved",
            ErrorCode::NotReadOnly => "not a read-only call",
            ErrorCode::EphemeralOnLocalSession => "ephemeral on local session",
            ErrorCode::NoWatcher => "no watcher",
            ErrorCode::RequestTimeout => "request timeout",
            ErrorCode::ReconfigDisabled => "reconfig disabled",
            ErrorCode::SessionClosedRequireSaslAuth => "session closed require sasl auth",
            ErrorCode::QuotaExceeded => "quota exceeded",
            ErrorCode::ThrottledOp => "throttled op",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.describe(), self.code())
    }
}

int_enum! {
    /// Watch event types [Watcher.Event.EventType].
    pub enum EventType {
        /// Connection state change (client side).
        None = -1,
        /// Node created.
        NodeCreated = 1,
        /// Node deleted.
        NodeDeleted = 2,
        /// Data changed.
        NodeDataChanged = 3,
        /// Children changed.
        NodeChildrenChanged = 4,
        /// Data watch removed (client side).
        DataWatchRemoved = 5,
        /// Child watch removed (client side).
        ChildWatchRemoved = 6,
        /// Persistent watch removed (client side).
        PersistentWatchRemoved = 7,
    }
}

int_enum! {
    /// Connection states in events [Watcher.Event.KeeperState].
    pub enum KeeperState {
        /// Disconnected.
        Disconnected = 0,
        /// Connected.
        SyncConnected = 3,
        /// Auth failed.
        AuthFailed = 4,
        /// Connected to a read-only server.
        ConnectedReadOnly = 5,
        /// SASL authenticated.
        SaslAuthenticated = 6,
        /// Session expired.
        Expired = -112,
        /// Closed by the client.
        Closed = 7,
    }
}

int_enum! {
    /// `checkWatches` / `removeWatches` watcher kinds [Watcher.WatcherType].
    pub enum WatcherType {
        /// Child watches.
        Children = 1,
        /// Data (and exist) watches.
        Data = 2,
        /// Every kind.
        Any = 3,
        /// Persistent watches.
        Persistent = 4,
        /// Persistent recursive watches.
        PersistentRecursive = 5,
    }
}

int_enum! {
    /// `addWatch` modes [AddWatchMode].
    pub enum AddWatchMode {
        /// Persistent: data and child events at the path, not removed when fired.
        Persistent = 0,
        /// Persistent recursive: data events for the whole subtree.
        PersistentRecursive = 1,
    }
}

int_enum! {
    /// Create modes (the `flags` of a create) [CreateMode].
    pub enum CreateMode {
        /// Persistent.
        Persistent = 0,
        /// Ephemeral.
        Ephemeral = 1,
        /// Persistent sequential.
        PersistentSequential = 2,
        /// Ephemeral sequential.
        EphemeralSequential = 3,
        /// Container.
        Container = 4,
        /// Persistent with TTL.
        PersistentWithTtl = 5,
        /// Persistent sequential with TTL.
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Owned by a session.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }
    /// Gets a sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    /// A container.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
    /// A TTL node.
    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxid_halves_and_display() {
        let z = Zxid::new(3, 7);
        assert_eq!(z.0, 0x3_0000_0007);
        assert_eq!((z.epoch(), z.counter()), (3, 7));
        assert_eq!(z.to_string(), "0x300000007");
        assert_eq!(SessionId(0x0100_000a_47bc_0000).to_string(), "0x100000a47bc0000");
    }

    #[test]
    fn codes_map_both_ways() {
        assert_eq!(OpCode::from_i32(106), Some(OpCode::AddWatch));
        assert_eq!(OpCode::from_i32(10), None);
        assert_eq!(ErrorCode::from_i32(-101), Some(ErrorCode::NoNode));
        assert_eq!(ErrorCode::NodeExists.code(), -110);
        assert!(OpCode::Multi.is_write());
        assert!(!OpCode::MultiRead.is_write());
    }
}
