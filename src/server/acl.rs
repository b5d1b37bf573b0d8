//! ACL checks and authentication providers (wire-protocol.md §10): world, ip (with CIDR),
//! digest (`user:base64(sha1(user:password))`), super and the `auth` pseudo-scheme.
//!
//! Pure functions. SHA-1 and base64 are the RustCrypto `sha1` and the `base64` crates: digest
//! identities must match Java's `MessageDigest` and `Base64` byte for byte, which vetted
//! implementations (with their own test vectors) do better than hand-written ones.

use std::net::IpAddr;

use base64::Engine as _;
use sha1::Digest as _;

use crate::jute::data::{perms, Acl, Id};
use crate::limits;
use crate::proto::ErrorCode;

/// The identities of one connection plus whether it is a super user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    /// Identities (`ip:<addr>` always, plus one per successful addauth).
    pub ids: Vec<Id>,
}

impl AuthInfo {
    /// The identities of a new connection from `addr`.
    pub fn for_address(addr: IpAddr) -> AuthInfo {
        // Java reports an IPv4 client of a dual-stack socket as its IPv4 address.
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        AuthInfo { ids: vec![Id::new("ip", &addr.to_string())] }
    }

    /// Whether any identity is `super`.
    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|i| i.scheme == "super")
    }
}

/// Checks that `auth` holds `perm` on a node with `acl` [ZooKeeperServer.checkACL], in time
/// linear in entries plus identities.
pub fn check(acl: &[Acl], perm: i32, auth: &AuthInfo, skip_acl: bool) -> Result<(), ErrorCode> {
    if skip_acl || acl.is_empty() || auth.is_super() {
        return Ok(());
    }
    if acl.len() * auth.ids.len() > 256 {
        return check_indexed(acl, perm, auth);
    }
    for entry in acl {
        if entry.perms & perm == 0 {
            continue;
        }
        if entry.id.scheme == "world" && entry.id.id == "anyone" {
            return Ok(());
        }
        for id in &auth.ids {
            if id.scheme == entry.id.scheme && matches(&id.scheme, &id.id, &entry.id.id) {
                return Ok(());
            }
        }
    }
    Err(ErrorCode::NoAuth)
}

/// [`check`] for long lists: the identities are indexed once, entries are looked up (ip
/// entries still match against the connection's ip identities, which are few).
fn check_indexed(acl: &[Acl], perm: i32, auth: &AuthInfo) -> Result<(), ErrorCode> {
    let exact: std::collections::HashSet<(&str, &str)> =
        auth.ids.iter().map(|i| (i.scheme.as_str(), i.id.as_str())).collect();
    let ips: Vec<&str> =
        auth.ids.iter().filter(|i| i.scheme == "ip").map(|i| i.id.as_str()).collect();
    let allowed = acl.iter().filter(|e| e.perms & perm != 0).any(|e| {
        let (scheme, id) = (e.id.scheme.as_str(), e.id.id.as_str());
        (scheme == "world" && id == "anyone")
            || (scheme == "ip" && ips.iter().any(|a| ip_matches(a, id)))
            || (scheme != "ip" && exact.contains(&(scheme, id)))
    });
    if allowed {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// The matcher of a scheme: `id` is the connection's, `acl_id` the ACL entry's.
fn matches(scheme: &str, id: &str, acl_id: &str) -> bool {
    match scheme {
        "ip" => ip_matches(id, acl_id),
        _ => id == acl_id,
    }
}

/// CIDR match of an address against `addr[/bits]`; IPv4 never matches IPv6.
pub fn ip_matches(addr: &str, acl_id: &str) -> bool {
    let (net, bits) = match acl_id.split_once('/') {
        Some((n, b)) => match b.parse::<u32>() {
            Ok(b) => (n, Some(b)),
            Err(_) => return false,
        },
        None => (acl_id, None),
    };
    let (Ok(a), Ok(n)) = (addr.parse::<IpAddr>(), net.parse::<IpAddr>()) else {
        return false;
    };
    // A server bound to `::` sees IPv4 clients as ::ffff:a.b.c.d; they match IPv4 entries.
    let a = match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    };
    let (a, n, width) = match (a, n) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    let bits = bits.unwrap_or(width).min(width);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (a >> shift) == (n >> shift)
}

/// Whether an ACL id is valid for its scheme [the providers' isValid].
fn valid_id(id: &Id) -> bool {
    match id.scheme.as_str() {
        "world" => id.id == "anyone",
        "digest" => id.id.split(':').count() == 2,
        "ip" => {
            let (net, bits) = match id.id.split_once('/') {
                Some((n, b)) => (n, Some(b)),
                None => (id.id.as_str(), None),
            };
            let Ok(addr) = net.parse::<IpAddr>() else { return false };
            let width = if addr.is_ipv4() { 32 } else { 128 };
            match bits {
                None => true,
                Some(b) => b.parse::<u32>().is_ok_and(|b| b <= width),
            }
        }
        "super" | "sasl" | "x509" => true,
        _ => false,
    }
}

/// Validates and expands an ACL list given to create/setACL [PrepRequestProcessor.fixupACL];
/// duplicates are dropped (in linear time). A list of more than [`limits::ACL_ENTRIES_MAX`]
/// entries, given or after expanding `auth`, is INVALIDACL.
pub fn fixup(acl: &[Acl], auth: &AuthInfo) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() || acl.len() > limits::ACL_ENTRIES_MAX {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    let mut seen: std::collections::HashSet<Acl> = std::collections::HashSet::new();
    let mut push = |a: Acl, out: &mut Vec<Acl>| {
        if seen.insert(a.clone()) {
            out.push(a);
        }
    };
    for entry in acl {
        if entry.id.scheme == "auth" {
            let mut any = false;
            for id in &auth.ids {
                // Only authenticated providers count (not ip).
                if matches!(id.scheme.as_str(), "digest" | "sasl" | "x509" | "super") {
                    push(Acl { perms: entry.perms, id: id.clone() }, &mut out);
                    any = true;
                }
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if valid_id(&entry.id) {
            push(entry.clone(), &mut out);
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
        if out.len() > limits::ACL_ENTRIES_MAX {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// What an `auth` packet yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// New identities for the connection.
    Added(Vec<Id>),
    /// Unknown scheme or bad credentials: AUTHFAILED, then close.
    Failed,
}

/// Handles `addauth scheme data` [the providers' handleAuthentication].
pub fn authenticate(scheme: &str, data: &[u8], super_digest: Option<&str>) -> AuthOutcome {
    match scheme {
        "digest" => {
            let Ok(text) = std::str::from_utf8(data) else { return AuthOutcome::Failed };
            let id = digest_id(text);
            let mut ids = vec![Id::new("digest", &id)];
            if super_digest == Some(id.as_str()) {
                ids.push(Id::new("super", ""));
            }
            AuthOutcome::Added(ids)
        }
        // ZooKeeper's IPAuthenticationProvider accepts any data and adds the connection's own
        // address, which every connection already holds from accept: nothing new to add.
        "ip" => AuthOutcome::Added(Vec::new()),
        // world needs no authentication; other schemes have no provider.
        _ => AuthOutcome::Failed,
    }
}

/// `user:password` -> `user:base64(sha1("user:password"))`.
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = sha1::Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// The user name part of an identity, as whoAmI reports it.
pub fn user_of(id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or("").to_owned(),
        _ => id.id.clone(),
    }
}

/// Whether the ACL grants READ or ADMIN, and ADMIN specifically (for getACL).
pub fn can_read_acl(acl: &[Acl], auth: &AuthInfo, skip: bool) -> Result<bool, ErrorCode> {
    let admin = check(acl, perms::ADMIN, auth, skip).is_ok();
    if admin {
        return Ok(true);
    }
    check(acl, perms::READ, auth, skip)?;
    Ok(false)
}

/// Hides digest hashes from callers without ADMIN (`user:x`).
pub fn redact(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl::new(a.perms, "digest", &format!("{user}:x"))
            } else {
                a.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ids_match_zookeepers() {
        // ZooKeeper's documented example: super:test.
        assert_eq!(digest_id("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        // base64(sha1(...)) by Python's hashlib, and a password with colons (only the text
        // before the first one is the user).
        assert_eq!(digest_id("bob:secret"), "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
        assert_eq!(digest_id("u:a:b"), "u:Ka3Bfj2GPj7fp0ffwAw1Arlu9+Q=");
    }

    #[test]
    fn cidr_matching() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("::1", "::1/128"));
        assert!(!ip_matches("127.0.0.1", "::1"));
        assert!(ip_matches("1.2.3.4", "0.0.0.0/0"));
    }

    #[test]
    fn acl_check_rules() {
        let ip = AuthInfo::for_address("127.0.0.1".parse().unwrap());
        let open = Acl::open_unsafe();
        assert!(check(&open, perms::WRITE, &ip, false).is_ok());
        let read_only = Acl::read_unsafe();
        assert_eq!(check(&read_only, perms::WRITE, &ip, false), Err(ErrorCode::NoAuth));
        assert!(check(&read_only, perms::WRITE, &ip, true).is_ok());
        let local = vec![Acl::new(perms::ALL, "ip", "127.0.0.0/8")];
        assert!(check(&local, perms::DELETE, &ip, false).is_ok());
        let mut digest = ip.clone();
        digest.ids.push(Id::new("digest", &digest_id("u:p")));
        let acl = vec![Acl::new(perms::READ, "digest", &digest_id("u:p"))];
        assert!(check(&acl, perms::READ, &digest, false).is_ok());
        assert!(check(&acl, perms::READ, &ip, false).is_err());
        let mut sup = ip.clone();
        sup.ids.push(Id::new("super", ""));
        assert!(check(&acl, perms::ADMIN, &sup, false).is_ok());
        assert!(check(&[], perms::ADMIN, &ip, false).is_ok());
    }

    #[test]
    fn fixup_rules() {
        let ip = AuthInfo::for_address("127.0.0.1".parse().unwrap());
        assert_eq!(fixup(&[], &ip), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&Acl::creator_all(), &ip), Err(ErrorCode::InvalidAcl));
        let bad_world = vec![Acl::new(31, "world", "someone")];
        assert_eq!(fixup(&bad_world, &ip), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&[Acl::new(31, "digest", "nocolon")], &ip), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&[Acl::new(31, "foo", "x")], &ip), Err(ErrorCode::InvalidAcl));
        let mut auth = ip.clone();
        auth.ids.push(Id::new("digest", "u:h"));
        let fixed = fixup(&Acl::creator_all(), &auth).unwrap();
        assert_eq!(fixed, vec![Acl::new(31, "digest", "u:h")]);
        let dup = vec![Acl::open_unsafe()[0].clone(), Acl::open_unsafe()[0].clone()];
        assert_eq!(fixup(&dup, &ip).unwrap(), Acl::open_unsafe());
    }

    #[test]
    fn digest_auth_and_super() {
        let sup = digest_id("super:test");
        match authenticate("digest", b"super:test", Some(&sup)) {
            AuthOutcome::Added(ids) => assert!(ids.iter().any(|i| i.scheme == "super")),
            AuthOutcome::Failed => panic!("should authenticate"),
        }
        assert_eq!(authenticate("kerberos", b"x", None), AuthOutcome::Failed);
        assert_eq!(redact(&[Acl::new(1, "digest", "u:h")]), vec![Acl::new(1, "digest", "u:x")]);
    }

    #[test]
    fn ipv4_mapped_clients_match_ipv4_entries() {
        assert!(ip_matches("::ffff:10.1.2.3", "10.1.0.0/16"));
        assert!(ip_matches("::ffff:10.1.2.3", "10.1.2.3"));
        assert!(!ip_matches("::ffff:10.1.2.3", "10.2.0.0/16"));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(AuthInfo::for_address(mapped).ids, vec![Id::new("ip", "10.1.2.3")]);
    }

    #[test]
    fn acl_lists_are_bounded_and_deduplicated() {
        let ip = AuthInfo::for_address("127.0.0.1".parse().unwrap());
        let many: Vec<Acl> = (0..=limits::ACL_ENTRIES_MAX)
            .map(|i| Acl::new(31, "digest", &format!("u{i}:x")))
            .collect();
        assert_eq!(fixup(&many, &ip), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&many[..limits::ACL_ENTRIES_MAX], &ip).map(|a| a.len()), Ok(1024));
        let dup = vec![Acl::new(31, "world", "anyone"); 50];
        assert_eq!(fixup(&dup, &ip), Ok(vec![Acl::new(31, "world", "anyone")]));
    }

    #[test]
    fn indexed_checks_agree_with_the_plain_loop() {
        let mut auth = AuthInfo::for_address("10.0.0.7".parse().unwrap());
        for i in 0..40 {
            auth.ids.push(Id::new("digest", &format!("user{i}:h")));
        }
        let mut acl: Vec<Acl> =
            (0..100).map(|i| Acl::new(1, "digest", &format!("other{i}:h"))).collect();
        assert_eq!(check(&acl, perms::READ, &auth, false), Err(ErrorCode::NoAuth));
        acl.push(Acl::new(2, "digest", "user39:h"));
        assert_eq!(check(&acl, perms::READ, &auth, false), Err(ErrorCode::NoAuth));
        assert_eq!(check(&acl, perms::WRITE, &auth, false), Ok(()));
        acl.push(Acl::new(1, "ip", "10.0.0.0/8"));
        assert_eq!(check(&acl, perms::READ, &auth, false), Ok(()));
    }
}
