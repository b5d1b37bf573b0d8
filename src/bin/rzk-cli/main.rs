//! rzk-cli: a ZooKeeper shell on the rzk client library, shaped like Apache's zkCli.
//!
//! `rzk-cli [-server host:port,...] [-timeout ms] [-r] [-client-configuration FILE]
//! [-Dname=value ...] [cmd args...]`. TLS and SASL are configured as zkCli's are: a
//! `-client-configuration` properties file and `-D` system properties (also taken from
//! `$CLIENT_JVMFLAGS`): `zookeeper.client.secure`, `zookeeper.ssl.*`,
//! `java.security.auth.login.config` (a JAAS `Client` section), `zookeeper.sasl.*`. With a command it runs
//! that one command and exits (status 1 if it failed); otherwise it reads commands from stdin,
//! with a prompt when stdin is a terminal, and exits with status 1 if any command failed.
//! Output follows zkCli: results on stdout, errors (`Node does not exist: /x`) on stderr,
//! watch events as `WATCHER::` blocks. On a terminal, `editor` gives line editing, history
//! (arrows, reverse search; saved in `~/.rzk_cli_history` or `$RZK_CLI_HISTORY`) and tab
//! completion of commands and znode paths; `history` and `redo` work too.

mod editor;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rzk::client::{Client, ClientConfig, ClientSecurity, Error, Watch, WatchedEvent, Watcher};
use rzk::config::{parse_properties, SystemProperties};
use rzk::jute::data::{perms, Acl, Stat};
use rzk::proto::{AddWatchMode, CreateMode, ErrorCode, WatcherType};

/// Command names, for tab completion.
const COMMANDS: &[&str] = &[
    "addWatch",
    "addauth",
    "close",
    "config",
    "connect",
    "create",
    "delete",
    "deleteall",
    "get",
    "getAcl",
    "getAllChildrenNumber",
    "getEphemerals",
    "history",
    "ls",
    "printwatches",
    "quit",
    "redo",
    "removewatches",
    "set",
    "setAcl",
    "stat",
    "sync",
    "version",
    "whoami",
];

const USAGE: &str = "\
ZooKeeper -server host:port -timeout ms [-r] [-client-configuration file] [-Dname=value] cmd args
\taddWatch [-m mode] path # mode: PERSISTENT or PERSISTENT_RECURSIVE (the default)
\taddauth scheme auth
\tclose 
\tconfig [-c] [-w] [-s]
\tconnect host:port
\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]
\tdelete [-v version] path
\tdeleteall path
\tget [-s] [-w] path
\tgetAcl [-s] path
\tgetAllChildrenNumber path
\tgetEphemerals path
\thistory 
\tls [-s] [-w] [-R] path
\tprintwatches on|off
\tquit 
\tredo cmdno
\tremovewatches path [-c|-d|-a] [-l]
\tset [-s] [-v version] path data
\tsetAcl [-s] [-v version] [-R] path acl
\tstat [-w] path
\tsync path
\tversion 
\twhoami ";

/// Why a command failed; printed on stderr.
#[derive(Debug)]
enum CliError {
    /// Bad usage of a command: the message to print.
    Usage(String),
    /// An operation failed on `path`.
    Op(Error, String),
    /// Not connected (after `close`, or the connection could not be made).
    NotConnected,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::NotConnected => write!(f, "Not connected"),
            CliError::Op(e, path) => match e.code() {
                ErrorCode::NoNode => write!(f, "Node does not exist: {path}"),
                ErrorCode::BadVersion => write!(f, "version No is not valid : {path}"),
                ErrorCode::NoAuth => write!(f, "Insufficient permission : {path}"),
                ErrorCode::NotEmpty => write!(f, "Node not empty: {path}"),
                ErrorCode::NodeExists => write!(f, "Node already exists: {path}"),
                ErrorCode::NoChildrenForEphemerals => {
                    write!(f, "Ephemerals cannot have children: {path}")
                }
                ErrorCode::InvalidAcl => write!(f, "Acl is not valid : {path}"),
                ErrorCode::BadArguments => write!(f, "{e}"),
                code => write!(f, "KeeperErrorCode = {code:?} for {path}"),
            },
        }
    }
}

impl std::error::Error for CliError {}

type CliResult = Result<(), CliError>;

struct Shell {
    server: String,
    security: ClientSecurity,
    timeout: Duration,
    read_only: bool,
    client: Option<Client>,
    print_watches: Arc<AtomicBool>,
    history: BTreeMap<usize, String>,
    next_cmd: usize,
}

fn print_event(e: &WatchedEvent) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\nWATCHER::\n\n{e}");
    let _ = out.flush();
}

impl Shell {
    fn connect(&mut self) -> CliResult {
        if let Some(old) = self.client.take() {
            let _ = old.close();
        }
        println!("Connecting to {}", self.server);
        let pw = self.print_watches.clone();
        let watcher = Watcher::new(move |e| {
            if pw.load(Ordering::Relaxed) {
                print_event(&e);
            }
        });
        let cfg = ClientConfig::new(&self.server, self.timeout)
            .watcher(watcher)
            .can_be_read_only(self.read_only)
            .security(self.security.clone());
        let client = cfg.connect().map_err(|e| CliError::Op(e, String::new()))?;
        let waited = client.wait_connected(self.timeout);
        self.client = Some(client);
        waited.map_err(|_| CliError::NotConnected)
    }

    fn client(&self) -> Result<&Client, CliError> {
        match &self.client {
            Some(c) if c.state().is_alive() => Ok(c),
            _ => Err(CliError::NotConnected),
        }
    }

    fn watcher(&self) -> Watch {
        Watch::Default
    }

    fn state_name(&self) -> &'static str {
        match self.client.as_ref().map(|c| c.state()) {
            Some(rzk::client::State::Connected) => "CONNECTED",
            Some(rzk::client::State::ConnectedReadOnly) => "CONNECTEDREADONLY",
            Some(rzk::client::State::Connecting) => "CONNECTING",
            Some(rzk::client::State::AuthFailed) => "AUTH_FAILED",
            _ => "CLOSED",
        }
    }

    /// Runs one command line; `Ok(false)` means quit.
    fn execute(&mut self, line: &str) -> Result<bool, CliError> {
        let args = tokenize(line);
        let Some(cmd) = args.first().map(String::as_str) else { return Ok(true) };
        if cmd != "redo" && cmd != "history" {
            self.history.insert(self.next_cmd, line.trim().to_owned());
            self.next_cmd += 1;
        }
        let rest = &args[1..];
        match cmd {
            "quit" => return Ok(false),
            "history" => {
                self.history.insert(self.next_cmd, line.trim().to_owned());
                let from = self.next_cmd.saturating_sub(10);
                for (n, l) in self.history.range(from..) {
                    println!("{n} - {l}");
                }
                self.next_cmd += 1;
            }
            "redo" => {
                let n: usize = rest
                    .first()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| CliError::Usage("redo cmdno".into()))?;
                let l = self
                    .history
                    .get(&n)
                    .cloned()
                    .ok_or_else(|| CliError::Usage("Command index out of range".into()))?;
                return self.execute(&l);
            }
            "connect" => {
                if let Some(s) = rest.first() {
                    self.server = s.clone();
                }
                self.connect()?;
            }
            "close" => {
                if let Some(c) = self.client.take() {
                    let _ = c.close();
                }
            }
            "printwatches" => match rest.first().map(String::as_str) {
                Some("on") => self.print_watches.store(true, Ordering::Relaxed),
                Some("off") => self.print_watches.store(false, Ordering::Relaxed),
                _ => {
                    let on = self.print_watches.load(Ordering::Relaxed);
                    println!("printwatches is {}", if on { "on" } else { "off" });
                }
            },
            "version" => println!("ZooKeeper CLI version: rzk {}", env!("CARGO_PKG_VERSION")),
            "help" => eprintln!("{USAGE}"),
            _ => self.data_command(cmd, rest)?,
        }
        Ok(true)
    }

    fn data_command(&mut self, cmd: &str, rest: &[String]) -> CliResult {
        match cmd {
            "create" => self.create(rest),
            "ls" => self.ls(rest),
            "get" => self.get(rest),
            "set" => self.set(rest),
            "stat" => self.stat(rest),
            "delete" => self.delete(rest),
            "deleteall" | "rmr" => self.delete_all(rest),
            "setAcl" => self.set_acl(rest),
            "getAcl" => self.get_acl(rest),
            "addauth" => {
                let (Some(scheme), auth) = (rest.first(), rest.get(1)) else {
                    return Err(CliError::Usage("addauth scheme auth".into()));
                };
                let auth = auth.map(|s| s.as_bytes()).unwrap_or(b"");
                self.client()?.add_auth(scheme, auth);
                Ok(())
            }
            "sync" => {
                let path = one_path(rest, "sync path")?;
                match self.client()?.sync(&path) {
                    Ok(_) => println!("Sync is OK"),
                    Err(e) => println!("Sync returned {:?}", e.code()),
                }
                Ok(())
            }
            "getEphemerals" => {
                let path = rest.first().cloned().unwrap_or_else(|| "/".into());
                let list =
                    self.client()?.get_ephemerals(&path).map_err(|e| CliError::Op(e, path))?;
                println!("[{}]", list.join(", "));
                Ok(())
            }
            "getAllChildrenNumber" => {
                let path = one_path(rest, "getAllChildrenNumber path")?;
                let n = self
                    .client()?
                    .get_all_children_number(&path)
                    .map_err(|e| CliError::Op(e, path))?;
                println!("{n}");
                Ok(())
            }
            "addWatch" => self.add_watch(rest),
            "removewatches" => self.remove_watches(rest),
            "whoami" => {
                let who = self.client()?.who_am_i().map_err(|e| CliError::Op(e, "/".into()))?;
                println!("Auth scheme: User");
                for i in who {
                    println!("{}: {}", i.auth_scheme, i.user);
                }
                Ok(())
            }
            "config" => {
                let (flags, _) = parse_flags(rest, &['c', 'w', 's'], &[])?;
                let watch = if flags.has('w') { self.watcher() } else { Watch::No };
                let path = "/zookeeper/config".to_owned();
                let (data, stat) =
                    self.client()?.get_data(&path, watch).map_err(|e| CliError::Op(e, path))?;
                println!("{}", String::from_utf8_lossy(&data));
                if flags.has('s') {
                    print_stat(&stat);
                }
                Ok(())
            }
            _ => {
                eprintln!("{USAGE}");
                Err(CliError::Usage(format!("Command not found: Command not found {cmd}")))
            }
        }
    }

    fn create(&self, rest: &[String]) -> CliResult {
        let usage = "create [-s] [-e] [-c] [-t ttl] path [data] [acl]";
        let (flags, args) = parse_flags(rest, &['s', 'e', 'c'], &['t'])?;
        let path = args.first().cloned().ok_or_else(|| CliError::Usage(usage.into()))?;
        let data = args.get(1).map(|s| s.as_bytes().to_vec()).unwrap_or_default();
        let acl = match args.get(2) {
            Some(a) => parse_acl(a)?,
            None => Acl::open_unsafe(),
        };
        let ttl = match flags.value('t') {
            Some(t) => Some(
                t.parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|_| CliError::Usage(format!("ttl must be a number: {t}")))?,
            ),
            None => None,
        };
        let (s, e, c) = (flags.has('s'), flags.has('e'), flags.has('c'));
        let mode = match (s, e, c, ttl.is_some()) {
            (_, true, _, true) | (_, _, true, true) | (_, true, true, _) => {
                return Err(CliError::Usage(
                    "-c, -e and -t cannot be combined with each other".into(),
                ))
            }
            (false, false, false, true) => CreateMode::PersistentWithTtl,
            (true, false, false, true) => CreateMode::PersistentSequentialWithTtl,
            (_, _, true, false) => CreateMode::Container,
            (true, true, _, _) => CreateMode::EphemeralSequential,
            (false, true, _, _) => CreateMode::Ephemeral,
            (true, false, false, false) => CreateMode::PersistentSequential,
            (false, false, false, false) => CreateMode::Persistent,
        };
        let c = self.client()?;
        let created = match ttl {
            Some(t) => c.create_ttl(&path, &data, &acl, mode, t).map(|(p, _)| p),
            None => c.create(&path, &data, &acl, mode),
        };
        let created = created.map_err(|e| CliError::Op(e, path))?;
        println!("Created {created}");
        Ok(())
    }

    fn ls(&self, rest: &[String]) -> CliResult {
        let (flags, args) = parse_flags(rest, &['s', 'w', 'R'], &[])?;
        let path = one_path(&args, "ls [-s] [-w] [-R] path")?;
        let c = self.client()?;
        if flags.has('R') {
            // Breadth first, as ZKUtil.listSubTreeBFS.
            let mut queue = std::collections::VecDeque::from([path.clone()]);
            while let Some(p) = queue.pop_front() {
                println!("{p}");
                let mut kids =
                    c.get_children(&p, Watch::No).map_err(|e| CliError::Op(e, p.clone()))?;
                kids.sort();
                for k in kids {
                    queue.push_back(if p == "/" { format!("/{k}") } else { format!("{p}/{k}") });
                }
            }
            return Ok(());
        }
        let watch = if flags.has('w') { self.watcher() } else { Watch::No };
        let (mut kids, stat) =
            c.get_children2(&path, watch).map_err(|e| CliError::Op(e, path.clone()))?;
        kids.sort();
        println!("[{}]", kids.join(", "));
        if flags.has('s') {
            print_stat(&stat);
        }
        Ok(())
    }

    fn get(&self, rest: &[String]) -> CliResult {
        let (flags, args) = parse_flags(rest, &['s', 'w'], &[])?;
        let path = one_path(&args, "get [-s] [-w] path")?;
        let watch = if flags.has('w') { self.watcher() } else { Watch::No };
        let (data, stat) =
            self.client()?.get_data(&path, watch).map_err(|e| CliError::Op(e, path))?;
        if data.is_empty() {
            println!("null");
        } else {
            println!("{}", String::from_utf8_lossy(&data));
        }
        if flags.has('s') {
            print_stat(&stat);
        }
        Ok(())
    }

    fn set(&self, rest: &[String]) -> CliResult {
        let (flags, args) = parse_flags(rest, &['s'], &['v'])?;
        let usage = "set [-s] [-v version] path data";
        let (Some(path), Some(data)) = (args.first(), args.get(1)) else {
            return Err(CliError::Usage(usage.into()));
        };
        let version = version_flag(&flags)?;
        let stat = self
            .client()?
            .set_data(path, data.as_bytes(), version)
            .map_err(|e| CliError::Op(e, path.clone()))?;
        if flags.has('s') {
            print_stat(&stat);
        }
        Ok(())
    }

    fn stat(&self, rest: &[String]) -> CliResult {
        let (flags, args) = parse_flags(rest, &['w'], &[])?;
        let path = one_path(&args, "stat [-w] path")?;
        let watch = if flags.has('w') { self.watcher() } else { Watch::No };
        match self.client()?.exists(&path, watch) {
            Ok(Some(stat)) => {
                print_stat(&stat);
                Ok(())
            }
            Ok(None) => Err(CliError::Op(Error::Server(ErrorCode::NoNode), path)),
            Err(e) => Err(CliError::Op(e, path)),
        }
    }

    fn delete(&self, rest: &[String]) -> CliResult {
        let (flags, args) = parse_flags(rest, &[], &['v'])?;
        let path = one_path(&args, "delete [-v version] path")?;
        let version = version_flag(&flags)?;
        self.client()?.delete(&path, version).map_err(|e| CliError::Op(e, path))
    }

    fn delete_all(&self, rest: &[String]) -> CliResult {
        let (_, args) = parse_flags(rest, &[], &['b'])?;
        let path = one_path(&args, "deleteall path")?;
        let c = self.client()?;
        // Collect the subtree breadth first, then delete deepest first [ZKUtil.deleteRecursive].
        let mut order = vec![path.clone()];
        let mut i = 0;
        while i < order.len() {
            let p = order[i].clone();
            let kids = c.get_children(&p, Watch::No).map_err(|e| CliError::Op(e, p.clone()))?;
            for k in kids {
                order.push(if p == "/" { format!("/{k}") } else { format!("{p}/{k}") });
            }
            i += 1;
        }
        for p in order.iter().rev() {
            if p == "/" || p == "/zookeeper" || p.starts_with("/zookeeper/") {
                continue;
            }
            match c.delete(p, -1) {
                Ok(()) => {}
                Err(e) if e.code() == ErrorCode::NoNode => {}
                Err(e) => return Err(CliError::Op(e, p.clone())),
            }
        }
        Ok(())
    }

    fn set_acl(&self, rest: &[String]) -> CliResult {
        let (flags, args) = parse_flags(rest, &['s', 'R'], &['v'])?;
        let usage = "setAcl [-s] [-v version] [-R] path acl";
        let (Some(path), Some(acl)) = (args.first(), args.get(1)) else {
            return Err(CliError::Usage(usage.into()));
        };
        let acl = parse_acl(acl)?;
        let version = version_flag(&flags)?;
        let c = self.client()?;
        let mut targets = vec![path.clone()];
        if flags.has('R') {
            let mut i = 0;
            while i < targets.len() {
                let p = targets[i].clone();
                let kids = c.get_children(&p, Watch::No).map_err(|e| CliError::Op(e, p.clone()))?;
                for k in kids {
                    targets.push(if p == "/" { format!("/{k}") } else { format!("{p}/{k}") });
                }
                i += 1;
            }
        }
        for p in &targets {
            let stat = c.set_acl(p, &acl, version).map_err(|e| CliError::Op(e, p.clone()))?;
            if flags.has('s') && p == path {
                print_stat(&stat);
            }
        }
        Ok(())
    }

    fn get_acl(&self, rest: &[String]) -> CliResult {
        let (flags, args) = parse_flags(rest, &['s'], &[])?;
        let path = one_path(&args, "getAcl [-s] path")?;
        let (acl, stat) = self.client()?.get_acl(&path).map_err(|e| CliError::Op(e, path))?;
        for a in acl {
            println!("'{},'{}", a.id.scheme, a.id.id);
            println!(": {}", perms_to_string(a.perms));
        }
        if flags.has('s') {
            print_stat(&stat);
        }
        Ok(())
    }

    fn add_watch(&self, rest: &[String]) -> CliResult {
        let (flags, args) = parse_flags(rest, &[], &['m'])?;
        let path = one_path(&args, "addWatch [-m mode] path")?;
        let mode = match flags.value('m').map(|s| s.to_ascii_uppercase()).as_deref() {
            None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
            Some("PERSISTENT") => AddWatchMode::Persistent,
            Some(m) => return Err(CliError::Usage(format!("Unsupported mode: {m}"))),
        };
        self.client()?.add_watch(&path, self.watcher(), mode).map_err(|e| CliError::Op(e, path))
    }

    fn remove_watches(&self, rest: &[String]) -> CliResult {
        let (flags, args) = parse_flags(rest, &['c', 'd', 'a', 'l'], &[])?;
        let path = one_path(&args, "removewatches path [-c|-d|-a] [-l]")?;
        let t = if flags.has('c') {
            WatcherType::Children
        } else if flags.has('d') {
            WatcherType::Data
        } else {
            WatcherType::Any
        };
        self.client()?
            .remove_all_watches(&path, t, flags.has('l'))
            .map_err(|e| CliError::Op(e, path))
    }
}

/// Flags parsed from a command's arguments.
struct Flags {
    set: Vec<char>,
    values: Vec<(char, String)>,
}

impl Flags {
    fn has(&self, c: char) -> bool {
        self.set.contains(&c)
    }
    fn value(&self, c: char) -> Option<&str> {
        self.values.iter().find(|(k, _)| *k == c).map(|(_, v)| v.as_str())
    }
}

/// Splits `-x` flags (`bool_flags`) and `-x value` options (`value_flags`) from positional
/// arguments; flags may appear anywhere, as with commons-cli.
fn parse_flags(
    args: &[String],
    bool_flags: &[char],
    value_flags: &[char],
) -> Result<(Flags, Vec<String>), CliError> {
    let mut flags = Flags { set: Vec::new(), values: Vec::new() };
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut chars = a.chars();
        if a.len() == 2 && chars.next() == Some('-') {
            let c = chars.next().unwrap_or('-');
            if bool_flags.contains(&c) {
                flags.set.push(c);
                continue;
            }
            if value_flags.contains(&c) {
                let v = it.next().ok_or_else(|| CliError::Usage(format!("-{c} needs a value")))?;
                flags.values.push((c, v.clone()));
                continue;
            }
            return Err(CliError::Usage(format!("Unrecognized option: {a}")));
        }
        positional.push(a.clone());
    }
    Ok((flags, positional))
}

fn one_path(args: &[String], usage: &str) -> Result<String, CliError> {
    args.first().cloned().ok_or_else(|| CliError::Usage(usage.into()))
}

fn version_flag(flags: &Flags) -> Result<i32, CliError> {
    match flags.value('v') {
        None => Ok(-1),
        Some(v) => v.parse().map_err(|_| CliError::Usage(format!("version must be a number: {v}"))),
    }
}

/// `scheme:id:perms[,scheme:id:perms...]`; the id may contain ':' (digest hashes do).
fn parse_acl(s: &str) -> Result<Vec<Acl>, CliError> {
    let mut out = Vec::new();
    for entry in s.split(',') {
        let first = entry.find(':');
        let last = entry.rfind(':');
        let (Some(first), Some(last)) = (first, last) else {
            return Err(CliError::Usage(format!("{entry} does not have the form scheme:id:perm")));
        };
        if first == last {
            return Err(CliError::Usage(format!("{entry} does not have the form scheme:id:perm")));
        }
        let perms = parse_perms(&entry[last + 1..])?;
        out.push(Acl::new(perms, &entry[..first], &entry[first + 1..last]));
    }
    Ok(out)
}

fn parse_perms(s: &str) -> Result<i32, CliError> {
    let mut p = 0;
    for c in s.chars() {
        p |= match c {
            'r' => perms::READ,
            'w' => perms::WRITE,
            'c' => perms::CREATE,
            'd' => perms::DELETE,
            'a' => perms::ADMIN,
            _ => return Err(CliError::Usage(format!("Unknown perm type: {c}"))),
        };
    }
    Ok(p)
}

fn perms_to_string(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

fn print_stat(s: &Stat) {
    println!("cZxid = 0x{:x}", s.czxid);
    println!("ctime = {}", rzk::server::fourlw::java_date(s.ctime));
    println!("mZxid = 0x{:x}", s.mzxid);
    println!("mtime = {}", rzk::server::fourlw::java_date(s.mtime));
    println!("pZxid = 0x{:x}", s.pzxid);
    println!("cversion = {}", s.cversion);
    println!("dataVersion = {}", s.version);
    println!("aclVersion = {}", s.aversion);
    println!("ephemeralOwner = 0x{:x}", s.ephemeral_owner);
    println!("dataLength = {}", s.data_length);
    println!("numChildren = {}", s.num_children);
}

/// Tab completion: command names for the first word, znode paths for words starting with
/// `/` (children of the typed parent).
fn completions(client: Option<&Client>, before: &str) -> Vec<String> {
    let word_start = before.rfind(' ').map(|i| i + 1).unwrap_or(0);
    let word = &before[word_start..];
    if word_start == 0 {
        return COMMANDS.iter().filter(|c| c.starts_with(word)).map(|c| c.to_string()).collect();
    }
    let (Some(client), Some(slash)) = (client, word.rfind('/')) else { return Vec::new() };
    let parent = if slash == 0 { "/" } else { &word[..slash] };
    let prefix = &word[slash + 1..];
    let mut kids = client.get_children(parent, Watch::No).unwrap_or_default();
    kids.sort();
    kids.into_iter()
        .filter(|k| k.starts_with(prefix))
        .map(|k| if parent == "/" { format!("/{k}") } else { format!("{parent}/{k}") })
        .collect()
}

/// Splits a command line on whitespace; single or double quotes group words.
fn tokenize(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut shell = Shell {
        server: "localhost:2181".into(),
        security: ClientSecurity::default(),
        timeout: Duration::from_millis(30_000),
        read_only: false,
        client: None,
        print_watches: Arc::new(AtomicBool::new(true)),
        history: BTreeMap::new(),
        next_cmd: 0,
    };
    let mut system = SystemProperties::from_jvm_flags(
        std::env::var("CLIENT_JVMFLAGS").unwrap_or_default().split_whitespace(),
    );
    let mut config_file = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-client-configuration" if i + 1 < args.len() => {
                config_file = Some(args[i + 1].clone());
                i += 2;
            }
            flag if flag.starts_with("-D") && system.add_jvm_flag(flag) => i += 1,
            "-server" if i + 1 < args.len() => {
                shell.server = args[i + 1].clone();
                i += 2;
            }
            "-timeout" if i + 1 < args.len() => {
                match args[i + 1].parse::<u64>() {
                    Ok(ms) => shell.timeout = Duration::from_millis(ms),
                    Err(_) => {
                        eprintln!("rzk-cli: bad -timeout {:?}", args[i + 1]);
                        return ExitCode::from(2);
                    }
                }
                i += 2;
            }
            "-r" => {
                shell.read_only = true;
                i += 1;
            }
            "-help" | "--help" | "-h" => {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => break,
        }
    }
    let command = &args[i..];
    match security(&system, config_file.as_deref()) {
        Ok(s) => shell.security = s,
        Err(e) => {
            eprintln!("rzk-cli: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = shell.connect() {
        eprintln!("{e}");
        if !command.is_empty() {
            return ExitCode::from(1);
        }
    }
    if !command.is_empty() {
        let line = command
            .iter()
            .map(|a| if a.contains(char::is_whitespace) { format!("\"{a}\"") } else { a.clone() })
            .collect::<Vec<_>>()
            .join(" ");
        let status = match shell.execute(&line) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
        // zkCli does not report the Closed event of a one-shot command.
        shell.print_watches.store(false, Ordering::Relaxed);
        if let Some(c) = shell.client.take() {
            let _ = c.close();
        }
        return status;
    }
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        println!("Welcome to rzk-cli!");
    }
    let mut editor = if interactive { editor::Editor::new(completions) } else { None };
    let mut failed = false;
    loop {
        let prompt = format!("[zk: {}({}) {}] ", shell.server, shell.state_name(), shell.next_cmd);
        let line = if let Some(ed) = editor.as_mut() {
            match ed.read_line(&prompt, &mut shell.client) {
                Ok(editor::ReadLine::Line(l)) => l,
                Ok(editor::ReadLine::Interrupted) => continue,
                Ok(editor::ReadLine::Eof) => break,
                Err(_) => {
                    editor = None;
                    continue;
                }
            }
        } else {
            if interactive {
                print!("{prompt}");
                let _ = std::io::stdout().flush();
            }
            // Lock stdin per line only: the editor reads it too.
            let mut l = String::new();
            match std::io::stdin().read_line(&mut l) {
                Ok(0) | Err(_) => break,
                Ok(_) => l.trim_end_matches(['\n', '\r']).to_owned(),
            }
        };
        match shell.execute(&line) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    shell.print_watches.store(false, Ordering::Relaxed);
    if let Some(c) = shell.client.take() {
        let _ = c.close();
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// TLS and SASL from the system properties and then the client configuration file, which
/// wins where both set a key (ZKClientConfig).
fn security(system: &SystemProperties, file: Option<&str>) -> Result<ClientSecurity, String> {
    let entries = match file {
        None => Vec::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            parse_properties(&text).map_err(|e| format!("{path}: {e}"))?
        }
    };
    let props = system.iter().chain(entries.iter().map(|p| (p.key.as_str(), p.value.as_str())));
    rzk::config::client::client_security(props)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_like_java() {
        use rzk::server::fourlw::java_date;
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_713_342_000), "Thu Nov 26 17:15:42 UTC 2026");
    }

    #[test]
    fn words_split_with_quotes() {
        assert_eq!(tokenize(" set /a 'x y'  z"), vec!["set", "/a", "x y", "z"]);
        assert_eq!(tokenize("create /a \"\""), vec!["create", "/a", ""]);
        assert!(tokenize("   ").is_empty());
    }

    #[test]
    fn acls_parse_and_print() {
        let acl = parse_acl("world:anyone:cdrwa,digest:u:abc=:r").unwrap();
        assert_eq!(acl[0], Acl::new(perms::ALL, "world", "anyone"));
        assert_eq!(acl[1], Acl::new(perms::READ, "digest", "u:abc="));
        assert_eq!(perms_to_string(perms::ALL), "cdrwa");
        assert!(parse_acl("b").is_err());
        assert!(parse_acl("world:anyone:z").is_err());
    }

    #[test]
    fn flags_anywhere() {
        let args: Vec<String> =
            ["-s", "/a", "-v", "3", "data"].iter().map(|s| s.to_string()).collect();
        let (f, pos) = parse_flags(&args, &['s'], &['v']).unwrap();
        assert!(f.has('s'));
        assert_eq!(f.value('v'), Some("3"));
        assert_eq!(pos, vec!["/a", "data"]);
        assert!(parse_flags(&args, &[], &['v']).is_err());
    }
}
