//! Data records shared by the wire, the txn log and snapshots (`org.apache.zookeeper.data`).

use crate::record;

record! {
    /// An identity: `scheme:id` (e.g. `world:anyone`, `digest:u:hash`, `ip:10.0.0.0/8`).
    pub struct Id {
        pub scheme: String,
        pub id: String,
    }
}

record! {
    /// One ACL entry: permission bits granted to an identity.
    pub struct Acl {
        pub perms: i32,
        pub id: Id,
    }
}

record! {
    /// The client-visible Stat (68 bytes).
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

record! {
    /// The stored Stat (60 bytes, snapshots only): no data length or child count.
    pub struct StatPersisted {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub pzxid: i64,
    }
}

record! {
    /// `whoAmI` answer element: scheme and user name.
    pub struct ClientInfo {
        pub auth_scheme: String,
        pub user: String,
    }
}

/// Permission bits [ZooDefs.Perms].
pub mod perms {
    /// Read data and list children.
    pub const READ: i32 = 1;
    /// Set data.
    pub const WRITE: i32 = 2;
    /// Create children.
    pub const CREATE: i32 = 4;
    /// Delete children.
    pub const DELETE: i32 = 8;
    /// Set the ACL.
    pub const ADMIN: i32 = 16;
    /// Everything.
    pub const ALL: i32 = 31;
}

impl Id {
    /// An identity from its two parts.
    pub fn new(scheme: &str, id: &str) -> Id {
        Id { scheme: scheme.to_owned(), id: id.to_owned() }
    }
}

impl Acl {
    /// An ACL entry.
    pub fn new(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl { perms, id: Id::new(scheme, id) }
    }

    /// `OPEN_ACL_UNSAFE`: everything for world:anyone.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, "world", "anyone")]
    }

    /// `READ_ACL_UNSAFE`: read for world:anyone.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(perms::READ, "world", "anyone")]
    }

    /// `CREATOR_ALL_ACL`: everything for the creator's authenticated identities.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, "auth", "")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::Jute;

    #[test]
    fn stat_is_68_bytes_and_persisted_60() {
        assert_eq!(Stat::default().to_bytes().len(), 68);
        assert_eq!(StatPersisted::default().to_bytes().len(), 60);
    }

    #[test]
    fn acl_round_trips_with_captured_bytes() {
        let acl = Acl::open_unsafe();
        let bytes = acl.to_bytes();
        let expected: &[u8] =
            b"\x00\x00\x00\x01\x00\x00\x00\x1f\x00\x00\x00\x05world\x00\x00\x00\x06anyone";
        assert_eq!(bytes, expected);
        assert_eq!(Vec::<Acl>::from_bytes(&bytes).unwrap(), acl);
    }
}
