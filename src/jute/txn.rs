//! Transaction records (`org.apache.zookeeper.txn`): what the prep stage produces, the txn log
//! stores and every replica applies (persistence-formats.md §3.4).
//!
//! A txn's record type is decided by the `type` in its [`TxnHeader`], so [`Txn`] is decoded
//! with [`Txn::decode_as`] rather than through [`Jute`].

use super::data::Acl;
use super::{DecodeError, DecodeResult, Jute, Reader, Writer};
use crate::proto::OpCode;
use crate::record;

record! {
    /// Header of every logged txn (32 bytes).
    pub struct TxnHeader {
        pub client_id: i64,
        pub cxid: i32,
        pub zxid: i64,
        pub time: i64,
        pub txn_type: i32,
    }
}

record! {
    /// Optional digest trailer after a txn record.
    pub struct TxnDigest {
        pub version: i32,
        pub tree_digest: i64,
    }
}

record! {
    /// create / create2 body (CreateTxnV0 has no `parent_cversion`; see [`Txn::decode_as`]).
    pub struct CreateTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub ephemeral: bool,
        pub parent_cversion: i32,
    }
}

record! {
    /// createTTL body.
    pub struct CreateTtlTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
        pub ttl: i64,
    }
}

record! {
    /// createContainer body.
    pub struct CreateContainerTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub parent_cversion: i32,
    }
}

record! {
    /// delete / deleteContainer body.
    pub struct DeleteTxn {
        pub path: String,
    }
}

record! {
    /// setData / reconfig body (`version` is the new version).
    pub struct SetDataTxn {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub version: i32,
    }
}

record! {
    /// setACL body (`version` is the new aversion).
    pub struct SetAclTxn {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }
}

record! {
    /// check body (inside multi only).
    pub struct CheckVersionTxn {
        pub path: String,
        pub version: i32,
    }
}

/// A decoded txn body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    /// create (1) or create2 (15).
    Create(CreateTxn),
    /// createTTL (21).
    CreateTtl(CreateTtlTxn),
    /// createContainer (19).
    CreateContainer(CreateContainerTxn),
    /// delete (2) or deleteContainer (20).
    Delete(DeleteTxn),
    /// setData (5) or reconfig (16).
    SetData(SetDataTxn),
    /// setACL (7).
    SetAcl(SetAclTxn),
    /// check (13, inside multi).
    Check(CheckVersionTxn),
    /// multi (14): sub-txns with their types.
    Multi(Vec<SubTxn>),
    /// createSession (-10): the negotiated timeout.
    CreateSession {
        /// Session timeout in ms.
        timeout_ms: i32,
    },
    /// closeSession (-11): ephemerals it deletes; `None` for a legacy body-less record.
    CloseSession(Option<Vec<String>>),
    /// error (-1): a failed write.
    Error(i32),
}

/// One txn inside a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubTxn {
    /// The sub-txn's type (1, 15, 19, 21, 2, 5, 13 or -1).
    pub op: i32,
    /// Its body.
    pub txn: Txn,
}

impl SubTxn {
    /// The type written for this sub-txn. ZooKeeper's multi decoding turns every create op into
    /// `Op.create`, whose type follows the create mode (createTTL 21, createContainer 19, else
    /// create 1), so its logs never hold create2 (15) inside a multi; and 3.8's replay rejects
    /// one there ("Invalid type of op: 15", logged at debug level only), silently dropping the
    /// whole multi. The body decides, so a create's type always matches its record layout.
    pub fn logged_type(&self) -> i32 {
        match self.txn {
            Txn::Create(_) => OpCode::Create.code(),
            Txn::CreateContainer(_) => OpCode::CreateContainer.code(),
            Txn::CreateTtl(_) => OpCode::CreateTtl.code(),
            _ => self.op,
        }
    }
}

impl Txn {
    /// Appends the body (no header).
    pub fn encode(&self, w: &mut Vec<u8>) {
        match self {
            Txn::Create(t) => t.encode(w),
            Txn::CreateTtl(t) => t.encode(w),
            Txn::CreateContainer(t) => t.encode(w),
            Txn::Delete(t) => t.encode(w),
            Txn::SetData(t) => t.encode(w),
            Txn::SetAcl(t) => t.encode(w),
            Txn::Check(t) => t.encode(w),
            Txn::Multi(subs) => {
                w.put_i32(subs.len() as i32);
                for s in subs {
                    w.put_i32(s.logged_type());
                    let mut body = Vec::new();
                    s.txn.encode(&mut body);
                    w.put_buffer(Some(&body));
                }
            }
            Txn::CreateSession { timeout_ms } => w.put_i32(*timeout_ms),
            Txn::CloseSession(paths) => {
                if let Some(p) = paths {
                    p.encode(w)
                }
            }
            Txn::Error(e) => w.put_i32(*e),
        }
    }

    /// Decodes the body of a txn whose header says `txn_type`.
    pub fn decode_as(txn_type: i32, r: &mut Reader<'_>) -> DecodeResult<Txn> {
        let op = OpCode::from_i32(txn_type).ok_or(DecodeError::InvalidValue("txn type"))?;
        Ok(match op {
            OpCode::Create | OpCode::Create2 => {
                let path = r.read_string()?;
                let data = r.read_buffer()?;
                let acl = Vec::<Acl>::decode(r)?;
                let ephemeral = r.read_bool()?;
                // CreateTxnV0 (pre-3.3 logs) ends here.
                let parent_cversion = if r.remaining() >= 4 { r.read_i32()? } else { -1 };
                Txn::Create(CreateTxn { path, data, acl, ephemeral, parent_cversion })
            }
            OpCode::CreateTtl => Txn::CreateTtl(CreateTtlTxn::decode(r)?),
            OpCode::CreateContainer => Txn::CreateContainer(CreateContainerTxn::decode(r)?),
            OpCode::Delete | OpCode::DeleteContainer => Txn::Delete(DeleteTxn::decode(r)?),
            OpCode::SetData | OpCode::Reconfig => Txn::SetData(SetDataTxn::decode(r)?),
            OpCode::SetAcl => Txn::SetAcl(SetAclTxn::decode(r)?),
            OpCode::Check => Txn::Check(CheckVersionTxn::decode(r)?),
            OpCode::Multi => {
                let n = r.read_count()?.unwrap_or(0);
                let mut subs = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    let op = r.read_i32()?;
                    let body = r.read_buffer()?.unwrap_or_default();
                    if op == OpCode::Multi.code() {
                        return Err(DecodeError::InvalidValue("nested multi txn"));
                    }
                    let txn = Txn::decode_as(op, &mut Reader::new(&body))?;
                    subs.push(SubTxn { op, txn });
                }
                Txn::Multi(subs)
            }
            OpCode::CreateSession => Txn::CreateSession { timeout_ms: r.read_i32()? },
            OpCode::CloseSession => {
                if r.remaining() >= 4 {
                    Txn::CloseSession(Some(Vec::<String>::decode(r)?))
                } else {
                    Txn::CloseSession(None)
                }
            }
            OpCode::Error => Txn::Error(r.read_i32()?),
            _ => return Err(DecodeError::InvalidValue("txn type")),
        })
    }
}

/// A txn with its header (and digest, if the log carried one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnEntry {
    /// Header.
    pub header: TxnHeader,
    /// Body.
    pub txn: Txn,
    /// Optional digest trailer.
    pub digest: Option<TxnDigest>,
}

impl TxnEntry {
    /// Serializes header + body (+ digest): the payload of a log record.
    pub fn encode(&self, w: &mut Vec<u8>) {
        self.header.encode(w);
        self.txn.encode(w);
        if let Some(d) = &self.digest {
            d.encode(w);
        }
    }

    /// Parses a log record payload. A digest trailer is read if exactly 12 bytes remain.
    pub fn decode(buf: &[u8]) -> DecodeResult<TxnEntry> {
        let mut r = Reader::new(buf);
        let header = TxnHeader::decode(&mut r)?;
        let txn = Txn::decode_as(header.txn_type, &mut r)?;
        let digest = if r.remaining() >= 12 { Some(TxnDigest::decode(&mut r)?) } else { None };
        Ok(TxnEntry { header, txn, digest })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn captured_create_session_record_decodes() {
        let payload = hex("0100000bac350000 00000000 0000000000000001 000001a2183444fc fffffff6
             00002710 00000002 0000000051c6d660");
        let e = TxnEntry::decode(&payload).unwrap();
        assert_eq!(e.header.client_id, 0x0100_000b_ac35_0000);
        assert_eq!(e.header.zxid, 1);
        assert_eq!(e.txn, Txn::CreateSession { timeout_ms: 10000 });
        assert_eq!(e.digest, Some(TxnDigest { version: 2, tree_digest: 0x51c6d660 }));
        let mut again = Vec::new();
        e.encode(&mut again);
        assert_eq!(again, payload);
    }

    #[test]
    fn every_txn_type_round_trips() {
        let create = CreateTxn {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral: false,
            parent_cversion: 1,
        };
        let cases = vec![
            (1, Txn::Create(create.clone())),
            (
                21,
                Txn::CreateTtl(CreateTtlTxn {
                    path: "/t".into(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    parent_cversion: 2,
                    ttl: 500,
                }),
            ),
            (
                19,
                Txn::CreateContainer(CreateContainerTxn {
                    path: "/c".into(),
                    data: Some(vec![]),
                    acl: Acl::open_unsafe(),
                    parent_cversion: 3,
                }),
            ),
            (2, Txn::Delete(DeleteTxn { path: "/a".into() })),
            (5, Txn::SetData(SetDataTxn { path: "/a".into(), data: None, version: 4 })),
            (7, Txn::SetAcl(SetAclTxn { path: "/a".into(), acl: Acl::read_unsafe(), version: 1 })),
            (
                14,
                Txn::Multi(vec![
                    SubTxn { op: 1, txn: Txn::Create(create) },
                    SubTxn {
                        op: 13,
                        txn: Txn::Check(CheckVersionTxn { path: "/".into(), version: 0 }),
                    },
                    SubTxn { op: -1, txn: Txn::Error(-110) },
                ]),
            ),
            (-10, Txn::CreateSession { timeout_ms: 4000 }),
            (-11, Txn::CloseSession(Some(vec!["/e".into()]))),
            (-11, Txn::CloseSession(None)),
            (-1, Txn::Error(-101)),
        ];
        for (ty, txn) in cases {
            let mut w = Vec::new();
            txn.encode(&mut w);
            assert_eq!(Txn::decode_as(ty, &mut Reader::new(&w)).unwrap(), txn, "type {ty}");
        }
    }

    #[test]
    fn creates_inside_a_multi_are_written_with_the_type_of_their_body() {
        let create = CreateTxn {
            path: "/m".into(),
            data: None,
            acl: Acl::open_unsafe(),
            ephemeral: false,
            parent_cversion: 1,
        };
        let container = CreateContainerTxn {
            path: "/c".into(),
            data: None,
            acl: Acl::open_unsafe(),
            parent_cversion: 2,
        };
        let multi = Txn::Multi(vec![
            SubTxn { op: 15, txn: Txn::Create(create.clone()) },
            SubTxn { op: 15, txn: Txn::CreateContainer(container.clone()) },
            SubTxn {
                op: 5,
                txn: Txn::SetData(SetDataTxn { path: "/m".into(), data: None, version: 1 }),
            },
        ]);
        let mut w = Vec::new();
        multi.encode(&mut w);
        let back = Txn::decode_as(14, &mut Reader::new(&w)).unwrap();
        let Txn::Multi(subs) = back else { panic!("not a multi") };
        let types: Vec<i32> = subs.iter().map(|s| s.op).collect();
        assert_eq!(types, vec![1, 19, 5]);
        assert_eq!(subs[0].txn, Txn::Create(create));
        assert_eq!(subs[1].txn, Txn::CreateContainer(container));
    }

    #[test]
    fn unknown_and_top_level_garbage_types_fail() {
        assert!(Txn::decode_as(99, &mut Reader::new(&[])).is_err());
        assert!(Txn::decode_as(3, &mut Reader::new(&[])).is_err());
    }
}
