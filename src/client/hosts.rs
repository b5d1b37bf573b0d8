//! Connect strings, chroot mapping, path validation and the client's small RNG.
//!
//! Pure functions used by the calling threads (to build requests) and by the send thread (to
//! pick hosts and strip the chroot from replies and events). No I/O except name resolution in
//! [`HostList::next_host_addrs`], which the send thread calls when it starts a connection.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// Why a connect string or a path was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgumentError {
    /// The connect string lists no host.
    NoHosts,
    /// A `host:port` entry has an empty host or a port that is not a number in 1..=65535.
    BadHost(String),
    /// A path (or the chroot) breaks ZooKeeper's path rules; the string says which.
    BadPath(String, &'static str),
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgumentError::NoHosts => write!(f, "connect string has no host"),
            ArgumentError::BadHost(h) => write!(f, "bad host:port {h:?}"),
            ArgumentError::BadPath(p, why) => write!(f, "invalid path {p:?}: {why}"),
        }
    }
}

impl std::error::Error for ArgumentError {}

/// A parsed connect string: `host1:port1,host2:port2/chroot` (port defaults to 2181).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `(host, port)` in the order given.
    pub hosts: Vec<(String, u16)>,
    /// The chroot, `None` when absent or `/`.
    pub chroot: Option<String>,
}

impl ConnectString {
    /// Parses a connect string [ConnectStringParser.java].
    pub fn parse(s: &str) -> Result<ConnectString, ArgumentError> {
        let s = s.trim();
        let (hosts_part, chroot) = match s.find('/') {
            Some(i) => {
                let c = &s[i..];
                if c == "/" {
                    (&s[..i], None)
                } else {
                    validate_path(c, false)?;
                    (&s[..i], Some(c.to_owned()))
                }
            }
            None => (s, None),
        };
        let mut hosts = Vec::new();
        for entry in hosts_part.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            hosts.push(parse_host(entry)?);
        }
        if hosts.is_empty() {
            return Err(ArgumentError::NoHosts);
        }
        Ok(ConnectString { hosts, chroot })
    }
}

fn parse_host(entry: &str) -> Result<(String, u16), ArgumentError> {
    let bad = || ArgumentError::BadHost(entry.to_owned());
    // `[v6addr]:port`, `host:port` or a bare host.
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(bad)?;
        let port = rest[end + 1..].strip_prefix(':');
        (&rest[..end], port)
    } else {
        match entry.rfind(':') {
            Some(i) => (&entry[..i], Some(&entry[i + 1..])),
            None => (entry, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        None => 2181,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad()),
        },
    };
    Ok((host.to_owned(), port))
}

/// Chroot mapping between the paths the application sees and the server's paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chroot(Option<String>);

impl Chroot {
    /// A mapping for `chroot` (`None` = identity).
    pub fn new(chroot: Option<String>) -> Chroot {
        Chroot(chroot)
    }

    /// The chroot prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Client path -> server path: `/` maps to the chroot itself.
    pub fn to_server(&self, path: &str) -> String {
        match &self.0 {
            None => path.to_owned(),
            Some(c) if path == "/" => c.clone(),
            Some(c) => format!("{c}{path}"),
        }
    }

    /// Server path -> client path; paths outside the chroot are returned unchanged (the
    /// server should never send them).
    pub fn to_client(&self, path: &str) -> String {
        match &self.0 {
            None => path.to_owned(),
            Some(c) => match path.strip_prefix(c.as_str()) {
                Some("") => "/".to_owned(),
                Some(rest) if rest.starts_with('/') => rest.to_owned(),
                _ => path.to_owned(),
            },
        }
    }
}

/// Checks a path against ZooKeeper's rules [PathUtils.validatePath]; `sequential` allows a
/// trailing `/` (the server appends the sequence number).
pub fn validate_path(path: &str, sequential: bool) -> Result<(), ArgumentError> {
    let bad = |why| Err(ArgumentError::BadPath(path.to_owned(), why));
    if path.is_empty() {
        return bad("path must not be empty");
    }
    if !path.starts_with('/') {
        return bad("path must start with / character");
    }
    if path.len() == 1 {
        return if sequential { bad("path must not end with / character") } else { Ok(()) };
    }
    if path.ends_with('/') && !sequential {
        return bad("path must not end with / character");
    }
    let body = if sequential { path.trim_end_matches('/') } else { path };
    for segment in body[1..].split('/') {
        if segment.is_empty() {
            return bad("empty node name specified");
        }
        if segment == "." || segment == ".." {
            return bad("relative paths not allowed");
        }
        if segment.chars().any(|c| {
            c == '\0'
                || ('\u{1}'..='\u{1f}').contains(&c)
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{e000}'..='\u{f8ff}').contains(&c)
                || ('\u{fff0}'..='\u{ffff}').contains(&c)
        }) {
            return bad("invalid character");
        }
    }
    Ok(())
}

/// The hosts of a connect string in shuffled order, handed out round-robin as addresses.
#[derive(Debug)]
pub struct HostList {
    hosts: Vec<(String, u16)>,
    next: usize,
}

impl HostList {
    /// Shuffles `hosts` with `rng` [StaticHostProvider].
    pub fn new(mut hosts: Vec<(String, u16)>, rng: &mut fastrand::Rng) -> HostList {
        rng.shuffle(&mut hosts);
        HostList { hosts, next: 0 }
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// The next host in turn.
    pub fn next_host(&mut self) -> (String, u16) {
        let h = self.hosts[self.next % self.hosts.len()].clone();
        self.next = (self.next + 1) % self.hosts.len();
        h
    }

    /// The next host's name and its addresses (none if it does not resolve).
    pub fn next_host_addrs(&mut self) -> (String, Vec<SocketAddr>) {
        let (host, port) = self.next_host();
        let addrs = resolve(&host, port);
        (host, addrs)
    }
}

fn resolve(host: &str, port: u16) -> Vec<SocketAddr> {
    match (host, port).to_socket_addrs() {
        Ok(a) => {
            // IPv4 first: servers are commonly bound to 127.0.0.1 only.
            let mut v: Vec<SocketAddr> = a.collect();
            v.sort_by_key(|a| a.is_ipv6());
            v
        }
        Err(e) => {
            log::warn!("client: cannot resolve {host}: {e}");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_string_with_hosts_ports_and_chroot() {
        let c = ConnectString::parse("a:1,b:2, c /app/x").unwrap();
        assert_eq!(c.hosts, vec![("a".into(), 1), ("b".into(), 2), ("c".into(), 2181)]);
        assert_eq!(c.chroot.as_deref(), Some("/app/x"));
        assert_eq!(ConnectString::parse("a:1/").unwrap().chroot, None);
        let v6 = ConnectString::parse("[::1]:2182").unwrap();
        assert_eq!(v6.hosts, vec![("::1".into(), 2182)]);
    }

    #[test]
    fn bad_connect_strings_are_rejected() {
        assert_eq!(ConnectString::parse(""), Err(ArgumentError::NoHosts));
        assert_eq!(ConnectString::parse("/x"), Err(ArgumentError::NoHosts));
        assert!(matches!(ConnectString::parse("a:x"), Err(ArgumentError::BadHost(_))));
        assert!(matches!(ConnectString::parse("a:0"), Err(ArgumentError::BadHost(_))));
        assert!(matches!(ConnectString::parse(":1"), Err(ArgumentError::BadHost(_))));
        assert!(matches!(ConnectString::parse("a:1/x/"), Err(ArgumentError::BadPath(..))));
    }

    #[test]
    fn chroot_maps_both_ways() {
        let c = Chroot::new(Some("/app".into()));
        assert_eq!(c.to_server("/"), "/app");
        assert_eq!(c.to_server("/a/b"), "/app/a/b");
        assert_eq!(c.to_client("/app"), "/");
        assert_eq!(c.to_client("/app/a"), "/a");
        assert_eq!(c.to_client("/apple"), "/apple");
        assert_eq!(c.to_client("/other"), "/other");
        let none = Chroot::default();
        assert_eq!(none.to_server("/a"), "/a");
        assert_eq!(none.to_client("/a"), "/a");
    }

    #[test]
    fn paths_follow_zookeeper_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/zookeeper/quota"] {
            assert!(validate_path(ok, false).is_ok(), "{ok}");
        }
        for bad in ["", "a", "/a/", "//a", "/a//b", "/a/./b", "/..", "/a\u{0}"] {
            assert!(validate_path(bad, false).is_err(), "{bad:?}");
        }
        assert!(validate_path("/a/", true).is_ok());
        assert!(validate_path("/", true).is_err());
    }

    #[test]
    fn host_list_is_a_shuffled_round_robin() {
        let hosts: Vec<(String, u16)> = (1..=5).map(|p| ("h".to_owned(), p)).collect();
        let mut list = HostList::new(hosts, &mut fastrand::Rng::with_seed(7));
        let first: Vec<u16> = (0..5).map(|_| list.next_host().1).collect();
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, vec![1, 2, 3, 4, 5]);
        let again: Vec<u16> = (0..5).map(|_| list.next_host().1).collect();
        assert_eq!(first, again);
    }
}
