//! rzk-tool: offline inspection of ZooKeeper / rzk data directories.
//!
//! ```text
//! rzk-tool log FILE                       every txn, like ZooKeeper's LogFormatter
//! rzk-tool snapshot [--data] FILE         nodes with stats, then sessions (SnapshotFormatter)
//! rzk-tool verify FILE...                 check headers and checksums; exit 1 if any is damaged
//! rzk-tool purge DATALOGDIR [SNAPDIR] -n N   delete all but the newest N snapshots (PurgeTxnLog)
//! ```
//!
//! Txn bodies print in jute's CSV form as ZooKeeper's `Record.toString` does
//! (`'/path,#6869,v{s{31,s{'world,'anyone}}},F,1`), except that multi sub-txns are decoded
//! rather than shown as hex. Times print as UTC ISO-8601.
//!
//! The tool reads files without locking; run it on a stopped server's files or copies (a file
//! truncated while mapped raises SIGBUS).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use getopts::Options;

use rzk::jute::data::{Acl, StatPersisted};
use rzk::jute::txn::{Txn, TxnEntry};
use rzk::persistence::purge::purge;
use rzk::persistence::snapshot::{read_snapshot, SNAP_MAGIC};
use rzk::persistence::txnlog::{TxnIterator, LOG_MAGIC};
use rzk::proto::OpCode;

const USAGE: &str = "usage:
  rzk-tool log FILE
  rzk-tool snapshot [--data] FILE
  rzk-tool verify FILE...
  rzk-tool purge DATALOGDIR [SNAPDIR] -n N";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "log" => cmd_log(rest),
        "snapshot" => cmd_snapshot(rest),
        "verify" => cmd_verify(rest),
        "purge" => cmd_purge(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("rzk-tool: {message}");
            ExitCode::from(2)
        }
    }
}

/// Parses `args` with `opts`, requiring between `min` and `max` free arguments.
fn parse(
    opts: &Options,
    args: &[String],
    min: usize,
    max: usize,
) -> Result<getopts::Matches, String> {
    let matches = opts.parse(args).map_err(|e| format!("{e}\n{USAGE}"))?;
    if matches.free.len() < min || matches.free.len() > max {
        return Err(format!("wrong number of arguments\n{USAGE}"));
    }
    Ok(matches)
}

fn cmd_log(args: &[String]) -> Result<ExitCode, String> {
    let matches = parse(&Options::new(), args, 1, 1)?;
    let path = PathBuf::from(&matches.free[0]);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let write_error = |e: io::Error| format!("stdout: {e}");
    writeln!(out, "ZooKeeper Transactional Log File with dbid 0 txnlog format version 2")
        .map_err(write_error)?;
    let mut txns = TxnIterator::over_files(vec![path.clone()], i64::MIN);
    let mut count = 0u64;
    for txn in txns.by_ref() {
        let txn = txn.map_err(|e| e.to_string())?;
        writeln!(out, "{}", format_txn(&txn.entry)).map_err(write_error)?;
        count += 1;
    }
    writeln!(out, "EOF reached after {count} txns.").map_err(write_error)?;
    if let Some(tail) = txns.torn_tail() {
        writeln!(out, "damaged tail at offset {}: {}", tail.valid_len, tail.damage)
            .map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_snapshot(args: &[String]) -> Result<ExitCode, String> {
    let mut opts = Options::new();
    opts.optflag("d", "data", "print node data (UTF-8 where possible, else hex)");
    let matches = parse(&opts, args, 1, 1)?;
    let show_data = matches.opt_present("data");
    let snap = read_snapshot(Path::new(&matches.free[0])).map_err(|e| e.to_string())?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let write_error = |e: io::Error| format!("stdout: {e}");
    let mut ephemerals: BTreeMap<i64, usize> = BTreeMap::new();
    writeln!(out, "ZNode Details (count={}):", snap.nodes.len()).map_err(write_error)?;
    for node in &snap.nodes {
        if node.stat.ephemeral_owner != 0 {
            *ephemerals.entry(node.stat.ephemeral_owner).or_default() += 1;
        }
        writeln!(out, "----\n{}", node.path).map_err(write_error)?;
        write_stat(&mut out, &node.stat, node.data.as_deref()).map_err(write_error)?;
        if node.acl_ref != -1 {
            let acl = snap.acl_cache.iter().find(|(r, _)| *r == node.acl_ref);
            let acl = acl.map_or_else(|| "missing from the ACL cache".into(), |(_, a)| acls(a));
            writeln!(out, "  acl = {} ({acl})", node.acl_ref).map_err(write_error)?;
        }
        if show_data {
            writeln!(out, "  data = {}", show_bytes(node.data.as_deref())).map_err(write_error)?;
        }
    }
    writeln!(out, "----\nSession Details (sid, timeout, ephemeralCount):").map_err(write_error)?;
    for (sid, timeout) in &snap.sessions {
        let count = ephemerals.get(sid).copied().unwrap_or(0);
        writeln!(out, "0x{sid:x}, {timeout}, {count}").map_err(write_error)?;
    }
    writeln!(out, "----").map_err(write_error)?;
    if let Some(d) = snap.trailer.digest {
        writeln!(out, "Digest: zxid 0x{:x}, version {}, digest {}", d.zxid, d.version, d.digest)
            .map_err(write_error)?;
    }
    if let Some(z) = snap.trailer.last_processed_zxid {
        writeln!(out, "Last zxid: 0x{z:x}").map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_verify(args: &[String]) -> Result<ExitCode, String> {
    let matches = parse(&Options::new(), args, 1, usize::MAX)?;
    let mut damaged = 0;
    for name in &matches.free {
        let path = Path::new(name);
        match verify(path) {
            Ok(summary) => println!("{name}: ok, {summary}"),
            Err(problem) => {
                damaged += 1;
                println!("{name}: DAMAGED: {problem}");
            }
        }
    }
    Ok(if damaged == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Checks one log or snapshot; `Err` says where it is damaged.
fn verify(path: &Path) -> Result<String, String> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    if file.read_exact(&mut magic).is_err() {
        return Err("shorter than a file header (offset 0)".into());
    }
    match i32::from_be_bytes(magic) {
        LOG_MAGIC => {
            let mut txns = TxnIterator::over_files(vec![path.to_path_buf()], i64::MIN);
            let mut zxids = Vec::new();
            for txn in txns.by_ref() {
                zxids.push(txn.map_err(|e| e.to_string())?.entry.header.zxid);
            }
            if let Some(tail) = txns.torn_tail() {
                return Err(format!(
                    "torn tail at offset {}: {} ({} valid txns before it)",
                    tail.valid_len,
                    tail.damage,
                    zxids.len()
                ));
            }
            Ok(match (zxids.first(), zxids.last()) {
                (Some(first), Some(last)) => {
                    format!("txn log, {} txns, zxid 0x{first:x}..0x{last:x}", zxids.len())
                }
                _ => "txn log, no txns".into(),
            })
        }
        SNAP_MAGIC => {
            let snap = read_snapshot(path).map_err(|e| e.to_string())?;
            Ok(format!(
                "snapshot, {} nodes, {} sessions, {} ACL lists",
                snap.nodes.len(),
                snap.sessions.len(),
                snap.acl_cache.len()
            ))
        }
        other => Err(format!("unknown file type (magic 0x{other:08x} at offset 0)")),
    }
}

fn cmd_purge(args: &[String]) -> Result<ExitCode, String> {
    let mut opts = Options::new();
    opts.reqopt("n", "count", "number of newest snapshots to keep (at least 3)", "N");
    let matches = parse(&opts, args, 1, 2)?;
    let count: usize = matches
        .opt_str("n")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("-n needs a positive number\n{USAGE}"))?;
    let log_dir = PathBuf::from(&matches.free[0]);
    let snap_dir = matches.free.get(1).map_or_else(|| log_dir.clone(), PathBuf::from);
    let deleted = purge(&log_dir, &snap_dir, count).map_err(|e| e.to_string())?;
    for path in &deleted {
        println!("removed {}", path.display());
    }
    println!("{} files removed", deleted.len());
    Ok(ExitCode::SUCCESS)
}

fn write_stat(out: &mut impl Write, s: &StatPersisted, data: Option<&[u8]>) -> io::Result<()> {
    writeln!(out, "  cZxid = 0x{:x}", s.czxid)?;
    writeln!(out, "  ctime = {}", format_time_ms(s.ctime))?;
    writeln!(out, "  mZxid = 0x{:x}", s.mzxid)?;
    writeln!(out, "  mtime = {}", format_time_ms(s.mtime))?;
    writeln!(out, "  pZxid = 0x{:x}", s.pzxid)?;
    writeln!(out, "  cversion = {}", s.cversion)?;
    writeln!(out, "  dataVersion = {}", s.version)?;
    writeln!(out, "  aclVersion = {}", s.aversion)?;
    writeln!(out, "  ephemeralOwner = 0x{:x}", s.ephemeral_owner)?;
    writeln!(out, "  dataLength = {}", data.map_or(0, <[u8]>::len))
}

/// One LogFormatter line: time, session, cxid, zxid, type, body.
fn format_txn(e: &TxnEntry) -> String {
    let h = &e.header;
    let op = OpCode::from_i32(h.txn_type)
        .map_or_else(|| format!("type{}", h.txn_type), |o| o.name().to_owned());
    let mut csv = Csv::default();
    txn_csv(&mut csv, &e.txn);
    let mut line = format!(
        "{} session 0x{:x} cxid 0x{:x} zxid 0x{:x} {op} {}",
        format_time_ms(h.time),
        h.client_id,
        h.cxid,
        h.zxid,
        csv.out
    );
    if let Some(d) = &e.digest {
        line.push_str(&format!(" digest {},{}", d.version, d.tree_digest));
    }
    line
}

fn txn_csv(csv: &mut Csv, txn: &Txn) {
    match txn {
        Txn::Create(t) => {
            csv.string(&t.path);
            csv.buffer(t.data.as_deref());
            acl_csv(csv, &t.acl);
            csv.raw(if t.ephemeral { "T" } else { "F" });
            csv.raw(&t.parent_cversion.to_string());
        }
        Txn::CreateTtl(t) => {
            csv.string(&t.path);
            csv.buffer(t.data.as_deref());
            acl_csv(csv, &t.acl);
            csv.raw(&t.parent_cversion.to_string());
            csv.raw(&t.ttl.to_string());
        }
        Txn::CreateContainer(t) => {
            csv.string(&t.path);
            csv.buffer(t.data.as_deref());
            acl_csv(csv, &t.acl);
            csv.raw(&t.parent_cversion.to_string());
        }
        Txn::Delete(t) => csv.string(&t.path),
        Txn::SetData(t) => {
            csv.string(&t.path);
            csv.buffer(t.data.as_deref());
            csv.raw(&t.version.to_string());
        }
        Txn::SetAcl(t) => {
            csv.string(&t.path);
            acl_csv(csv, &t.acl);
            csv.raw(&t.version.to_string());
        }
        Txn::Check(t) => {
            csv.string(&t.path);
            csv.raw(&t.version.to_string());
        }
        Txn::Multi(subs) => {
            csv.open("v{");
            for sub in subs {
                csv.open("s{");
                csv.raw(&sub.op.to_string());
                csv.open("s{");
                txn_csv(csv, &sub.txn);
                csv.close();
                csv.close();
            }
            csv.close();
        }
        Txn::CreateSession { timeout_ms } => csv.raw(&timeout_ms.to_string()),
        Txn::CloseSession(paths) => {
            if let Some(paths) = paths {
                csv.open("v{");
                for p in paths {
                    csv.string(p);
                }
                csv.close();
            }
        }
        Txn::Error(err) => csv.raw(&err.to_string()),
    }
}

fn acl_csv(csv: &mut Csv, list: &[Acl]) {
    csv.open("v{");
    for acl in list {
        csv.open("s{");
        csv.raw(&acl.perms.to_string());
        csv.open("s{");
        csv.string(&acl.id.scheme);
        csv.string(&acl.id.id);
        csv.close();
        csv.close();
    }
    csv.close();
}

fn acls(list: &[Acl]) -> String {
    let parts: Vec<String> =
        list.iter().map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms)).collect();
    parts.join(", ")
}

/// Jute's CSV archive: fields separated by commas, `'` before strings, `#hex` buffers,
/// `v{..}` vectors, `s{..}` nested records.
#[derive(Default)]
struct Csv {
    out: String,
    /// Whether the next field is the first in its group (no comma before it).
    started: bool,
}

impl Csv {
    fn comma(&mut self) {
        if self.started {
            self.out.push(',');
        }
        self.started = true;
    }

    fn raw(&mut self, s: &str) {
        self.comma();
        self.out.push_str(s);
    }

    fn string(&mut self, s: &str) {
        self.comma();
        self.out.push('\'');
        for c in s.chars() {
            match c {
                '\0' => self.out.push_str("%00"),
                '\n' => self.out.push_str("%0A"),
                '\r' => self.out.push_str("%0D"),
                ',' => self.out.push_str("%2C"),
                '}' => self.out.push_str("%7D"),
                '%' => self.out.push_str("%25"),
                c => self.out.push(c),
            }
        }
    }

    fn buffer(&mut self, b: Option<&[u8]>) {
        self.comma();
        if let Some(b) = b.filter(|b| !b.is_empty()) {
            self.out.push('#');
            for byte in b {
                self.out.push_str(&format!("{byte:02x}"));
            }
        }
    }

    fn open(&mut self, bracket: &str) {
        self.comma();
        self.out.push_str(bracket);
        self.started = false;
    }

    fn close(&mut self) {
        self.out.push('}');
        self.started = true;
    }
}

fn show_bytes(data: Option<&[u8]>) -> String {
    match data {
        None => "null".into(),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
            _ => b.iter().map(|byte| format!("{byte:02x}")).collect::<String>(),
        },
    }
}

/// `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC).
fn format_time_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    // Civil date from a day count (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk::jute::txn::{CreateTxn, TxnHeader};

    #[test]
    fn times_print_as_utc() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_time_ms(1_795_706_157_730), "2026-11-26T15:15:57.730Z");
        assert_eq!(format_time_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn create_prints_like_log_formatter() {
        let entry = TxnEntry {
            header: TxnHeader { client_id: 0x1000, cxid: 2, zxid: 3, time: 0, txn_type: 1 },
            txn: Txn::Create(CreateTxn {
                path: "/a,b".into(),
                data: Some(b"hi".to_vec()),
                acl: Acl::open_unsafe(),
                ephemeral: false,
                parent_cversion: 1,
            }),
            digest: None,
        };
        assert_eq!(
            format_txn(&entry),
            "1970-01-01T00:00:00.000Z session 0x1000 cxid 0x2 zxid 0x3 create \
             '/a%2Cb,#6869,v{s{31,s{'world,'anyone}}},F,1"
        );
    }
}
