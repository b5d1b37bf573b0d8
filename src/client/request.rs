//! Requests as the send thread queues them, and replies decoded by opcode.
//!
//! Requests are encoded on the calling thread (paths already carry the chroot); the send
//! thread adds the header with the xid and, when the reply arrives, decodes the body with
//! [`decode_reply`]. Pure functions, no I/O.

use super::watches::WatchKind;
use super::{Chroot, Watcher};
use crate::jute::data::{Acl, ClientInfo, Stat};
use crate::jute::proto::{
    CheckVersionRequest, Create2Response, CreateResponse, CreateTtlRequest, DeleteRequest,
    GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response, GetDataResponse, MultiOp,
    MultiRequest, MultiResponse, MultiResult, PathRequest, SetDataRequest, StatResponse,
    StringListResponse, SyncResponse, WhoAmIResponse,
};
use crate::jute::{DecodeResult, Jute, Reader};
use crate::proto::{CreateMode, ErrorCode, OpCode, WatcherType};

/// A watch to register when the reply succeeds (exists: also on NONODE, as an exist watch).
pub(crate) struct WatchRegistration {
    pub kind: WatchKind,
    pub path: String,
    pub watcher: Watcher,
}

/// A local watch removal tied to a check/removeWatches request.
pub(crate) struct WatchRemoval {
    pub path: String,
    pub watcher_type: WatcherType,
    pub watcher: Option<u64>,
    /// Remove locally without asking the server.
    pub local: bool,
}

/// An encoded request body and what to do with the reply besides completing it.
pub(crate) struct Request {
    pub op: OpCode,
    pub body: Vec<u8>,
    pub watch: Option<WatchRegistration>,
    pub removal: Option<WatchRemoval>,
}

impl Request {
    pub fn new(op: OpCode, body: Vec<u8>) -> Request {
        Request { op, body, watch: None, removal: None }
    }
}

/// A successfully decoded reply body.
#[derive(Debug, Clone)]
pub(crate) enum Response {
    Empty,
    Path(String),
    PathStat(String, Stat),
    Stat(Stat),
    Data(Vec<u8>, Stat),
    Children(Vec<String>),
    Children2(Vec<String>, Stat),
    Acl(Vec<Acl>, Stat),
    Count(i32),
    Multi(MultiResponse),
    WhoAmI(Vec<ClientInfo>),
}

/// Decodes the body of a successful reply to `op`.
pub(crate) fn decode_reply(op: OpCode, body: &[u8]) -> DecodeResult<Response> {
    let r = &mut Reader::new(body);
    Ok(match op {
        OpCode::Create => Response::Path(CreateResponse::decode(r)?.path),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            let c = Create2Response::decode(r)?;
            Response::PathStat(c.path, c.stat)
        }
        OpCode::Exists | OpCode::SetData | OpCode::SetAcl => {
            Response::Stat(StatResponse::decode(r)?.stat)
        }
        OpCode::GetData => {
            let d = GetDataResponse::decode(r)?;
            Response::Data(d.data.unwrap_or_default(), d.stat)
        }
        OpCode::GetAcl => {
            let a = GetAclResponse::decode(r)?;
            Response::Acl(a.acl, a.stat)
        }
        OpCode::GetChildren | OpCode::GetEphemerals => {
            Response::Children(StringListResponse::decode(r)?.list)
        }
        OpCode::GetChildren2 => {
            let c = GetChildren2Response::decode(r)?;
            Response::Children2(c.children, c.stat)
        }
        OpCode::Sync => Response::Path(SyncResponse::decode(r)?.path),
        OpCode::GetAllChildrenNumber => {
            Response::Count(GetAllChildrenNumberResponse::decode(r)?.total_number)
        }
        OpCode::Multi | OpCode::MultiRead => Response::Multi(MultiResponse::decode(r)?),
        OpCode::WhoAmI => Response::WhoAmI(WhoAmIResponse::decode(r)?.client_info),
        _ => Response::Empty,
    })
}

/// One operation of a `multi` transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a node (`ttl` only with the TTL modes).
    Create {
        /// Client path.
        path: String,
        /// Initial data.
        data: Vec<u8>,
        /// ACL.
        acl: Vec<Acl>,
        /// Create mode.
        mode: CreateMode,
        /// Time to live for TTL modes.
        ttl: Option<std::time::Duration>,
    },
    /// Delete a node at `version` (-1 = any).
    Delete {
        /// Client path.
        path: String,
        /// Expected version.
        version: i32,
    },
    /// Set data at `version` (-1 = any).
    SetData {
        /// Client path.
        path: String,
        /// New data.
        data: Vec<u8>,
        /// Expected version.
        version: i32,
    },
    /// Check the version (-1 = existence only).
    Check {
        /// Client path.
        path: String,
        /// Expected version.
        version: i32,
    },
}

/// One operation of a `multiRead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// getChildren.
    GetChildren(String),
    /// getData.
    GetData(String),
}

/// The result of one op of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// create: the created (client) path and its Stat.
    Create(String, Option<Stat>),
    /// delete.
    Delete,
    /// setData: the new Stat.
    SetData(Stat),
    /// check.
    Check,
    /// getChildren (multiRead).
    GetChildren(Vec<String>),
    /// getData (multiRead).
    GetData(Vec<u8>, Stat),
    /// The op failed with this code (0 = would have succeeded, inside a failed multi).
    Error(ErrorCode),
}

impl Op {
    pub(crate) fn path(&self) -> &str {
        match self {
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. } => path,
        }
    }

    pub(crate) fn to_wire(&self, chroot: &Chroot) -> MultiOp {
        match self {
            Op::Create { path, data, acl, mode, ttl } => {
                let (op, ttl) = create_opcode(*mode, *ttl, true);
                MultiOp::Create {
                    op,
                    req: CreateTtlRequest {
                        path: chroot.to_server(path),
                        data: Some(data.clone()),
                        acl: acl.clone(),
                        flags: mode.code(),
                        ttl,
                    },
                }
            }
            Op::Delete { path, version } => {
                MultiOp::Delete(DeleteRequest { path: chroot.to_server(path), version: *version })
            }
            Op::SetData { path, data, version } => MultiOp::SetData(SetDataRequest {
                path: chroot.to_server(path),
                data: Some(data.clone()),
                version: *version,
            }),
            Op::Check { path, version } => MultiOp::Check(CheckVersionRequest {
                path: chroot.to_server(path),
                version: *version,
            }),
        }
    }
}

impl ReadOp {
    pub(crate) fn path(&self) -> &str {
        match self {
            ReadOp::GetChildren(p) | ReadOp::GetData(p) => p,
        }
    }

    pub(crate) fn to_wire(&self, chroot: &Chroot) -> MultiOp {
        match self {
            ReadOp::GetChildren(p) => {
                MultiOp::GetChildren(PathRequest { path: chroot.to_server(p) })
            }
            ReadOp::GetData(p) => MultiOp::GetData(PathRequest { path: chroot.to_server(p) }),
        }
    }
}

/// The opcode for a create in `mode` and the ttl to send (-1 when not a TTL node): containers
/// use createContainer (19), TTL modes createTTL (21), others create (1) or create2 (15).
pub(crate) fn create_opcode(
    mode: CreateMode,
    ttl: Option<std::time::Duration>,
    want_stat: bool,
) -> (OpCode, i64) {
    if mode.is_container() {
        (OpCode::CreateContainer, -1)
    } else if mode.is_ttl() {
        (OpCode::CreateTtl, ttl.map(|t| t.as_millis() as i64).unwrap_or(-1))
    } else if want_stat {
        (OpCode::Create2, -1)
    } else {
        (OpCode::Create, -1)
    }
}

/// Encodes a multi / multiRead body.
pub(crate) fn encode_multi(ops: Vec<MultiOp>) -> Vec<u8> {
    MultiRequest { ops }.to_bytes()
}

/// Wire results -> client results, stripping the chroot from created paths.
pub(crate) fn convert_results(results: Vec<MultiResult>, chroot: &Chroot) -> Vec<OpResult> {
    results
        .into_iter()
        .map(|r| match r {
            MultiResult::Create(p) => OpResult::Create(chroot.to_client(&p), None),
            MultiResult::Create2(p, s) => OpResult::Create(chroot.to_client(&p), Some(s)),
            MultiResult::Delete => OpResult::Delete,
            MultiResult::SetData(s) => OpResult::SetData(s),
            MultiResult::Check => OpResult::Check,
            MultiResult::GetChildren(c) => OpResult::GetChildren(c),
            MultiResult::GetData(d, s) => OpResult::GetData(d.unwrap_or_default(), s),
            MultiResult::Error(e) => {
                OpResult::Error(ErrorCode::from_i32(e).unwrap_or(ErrorCode::SystemError))
            }
        })
        .collect()
}

/// The code a failed multi reports: the first error that is neither OK nor
/// RUNTIMEINCONSISTENCY [ZooKeeper.multiInternal].
pub(crate) fn multi_failure(results: &[OpResult]) -> Option<ErrorCode> {
    let mut any = None;
    for r in results {
        if let OpResult::Error(code) = r {
            if *code != ErrorCode::Ok && *code != ErrorCode::RuntimeInconsistency {
                return Some(*code);
            }
            if *code != ErrorCode::Ok {
                any = Some(*code);
            }
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_modes_pick_their_opcodes() {
        let ttl = Some(std::time::Duration::from_millis(500));
        assert_eq!(
            create_opcode(CreateMode::Container, None, false),
            (OpCode::CreateContainer, -1)
        );
        assert_eq!(
            create_opcode(CreateMode::PersistentWithTtl, ttl, false),
            (OpCode::CreateTtl, 500)
        );
        assert_eq!(create_opcode(CreateMode::Ephemeral, None, true), (OpCode::Create2, -1));
        assert_eq!(create_opcode(CreateMode::Persistent, None, false), (OpCode::Create, -1));
    }

    #[test]
    fn failed_multi_reports_the_real_cause() {
        let r = vec![
            OpResult::Error(ErrorCode::Ok),
            OpResult::Error(ErrorCode::NodeExists),
            OpResult::Error(ErrorCode::RuntimeInconsistency),
        ];
        assert_eq!(multi_failure(&r), Some(ErrorCode::NodeExists));
        assert_eq!(multi_failure(&[OpResult::Delete]), None);
    }

    #[test]
    fn replies_decode_by_opcode() {
        let body = SyncResponse { path: "/a".into() }.to_bytes();
        assert!(matches!(decode_reply(OpCode::Sync, &body), Ok(Response::Path(p)) if p == "/a"));
        assert!(decode_reply(OpCode::GetData, &[0, 0]).is_err());
        assert!(matches!(decode_reply(OpCode::Delete, &[]), Ok(Response::Empty)));
    }
}
