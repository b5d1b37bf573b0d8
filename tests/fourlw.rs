//! Four-letter words on the client port: texts and formats from four-letter-words.md, with
//! values cross-checked against a ZooKeeper 3.8 standalone server.
mod harness;

use std::collections::HashMap;

use harness::wire::{self, op, Session};
use harness::*;

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn local_port(s: &Session) -> u16 {
    s.raw.stream.local_addr().expect("local addr").port()
}

/// `key=value` or `key<TAB>value` lines into a map, keeping the key order too.
fn pairs(text: &str, sep: char) -> (Vec<String>, HashMap<String, String>) {
    let mut order = Vec::new();
    let mut map = HashMap::new();
    for l in text.lines() {
        if let Some((k, v)) = l.split_once(sep) {
            order.push(k.to_string());
            map.insert(k.to_string(), v.to_string());
        }
    }
    (order, map)
}

#[test]
fn ruok_and_isro() {
    let srv = TestServer::start();
    assert_eq!(four_letter(srv.addr, "ruok"), "imok");
    assert_eq!(four_letter(srv.addr, "isro"), "rw");
    // Anything after the word is ignored (e.g. the newline from `echo ruok | nc`).
    assert_eq!(four_letter(srv.addr, "ruok\n"), "imok");
}

#[test]
fn srvr_reports_the_summary_lines() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let (h, _, _) = s.create("/x", b"", 0);
    let out = four_letter(srv.addr, "srvr");
    let l = lines(&out);
    assert_eq!(l.len(), 9, "{out}");
    assert!(l[0].starts_with("Zookeeper version: "), "{out}");
    let lat = l[1].strip_prefix("Latency min/avg/max: ").expect("latency line");
    let parts: Vec<&str> = lat.split('/').collect();
    assert_eq!(parts.len(), 3);
    assert!(parts[0].parse::<u64>().is_ok() && parts[2].parse::<u64>().is_ok(), "{lat}");
    assert!(parts[1].contains('.'), "avg prints like a Java double: {lat}");
    assert!(l[2].strip_prefix("Received: ").expect("received").parse::<u64>().unwrap() >= 2);
    assert!(l[3].strip_prefix("Sent: ").expect("sent").parse::<u64>().unwrap() >= 2);
    // The session plus the connection asking.
    assert_eq!(l[4], "Connections: 2");
    assert_eq!(l[5], "Outstanding: 0");
    assert_eq!(l[6], format!("Zxid: 0x{:x}", h.zxid));
    assert_eq!(l[7], "Mode: standalone");
    // ZooKeeper 3.8 reports 5 on a fresh server (the root is counted as "" and "/").
    assert_eq!(l[8], "Node count: 6");
    assert!(out.ends_with('\n'));
}

#[test]
fn stat_lists_clients_in_brief_form() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    s.stat("/");
    let out = four_letter(srv.addr, "stat");
    let l = lines(&out);
    assert!(l[0].starts_with("Zookeeper version: "));
    assert_eq!(l[1], "Clients:");
    let mine = format!(" /127.0.0.1:{}[", local_port(&s));
    let line = l.iter().find(|x| x.starts_with(&mine)).expect("our connection listed");
    assert!(line.ends_with("](queued=0,recved=2,sent=2)"), "{line}");
    let blank = l.iter().position(|x| x.is_empty()).expect("blank line after clients");
    assert!(l[2..blank].iter().all(|x| x.starts_with(" /127.0.0.1:")), "{out}");
    assert!(l[blank + 1].starts_with("Latency min/avg/max: "), "{out}");
    assert!(l.contains(&"Mode: standalone"));
}

#[test]
fn cons_shows_session_details() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    let (h, _, _) = s.create("/c", b"", 0);
    s.stat("/c");
    s.call(op::GET_CHILDREN, &wire::path_watch("/", false));
    let out = four_letter(srv.addr, "cons");
    assert!(out.ends_with(")\n\n"), "one empty line at the end: {out:?}");
    let mine = format!(" /127.0.0.1:{}[", local_port(&s));
    let line = out.lines().find(|x| x.starts_with(&mine)).expect("our connection");
    let details = format!("](queued=0,recved=4,sent=4,sid=0x{:x},lop=GETC,est=", s.id);
    assert!(line.contains(&details), "{line}");
    let tail = format!(",to=30000,lcxid=0x3,lzxid=0x{:x},lresp=", h.zxid);
    assert!(line.contains(&tail), "{line}");
    for key in [",llat=", ",minlat=", ",avglat=", ",maxlat="] {
        assert!(line.contains(key), "{key} in {line}");
    }
    assert!(line.ends_with(')'));
    // The asking connection has no session: brief form only.
    let others: Vec<&str> =
        out.lines().filter(|x| !x.starts_with(&mine) && !x.is_empty()).collect();
    assert_eq!(others.len(), 1, "{out}");
    // Captured from ZooKeeper 3.8: interest 0 while it runs, the command counted as received.
    assert!(others[0].ends_with("[0](queued=0,recved=1,sent=0)"), "{out}");
}

#[test]
fn conf_lists_standalone_keys_in_order() {
    let srv = TestServer::start();
    let out = four_letter(srv.addr, "conf");
    let (order, map) = pairs(&out, '=');
    assert_eq!(
        order,
        [
            "clientPort",
            "secureClientPort",
            "dataDir",
            "dataDirSize",
            "dataLogDir",
            "dataLogSize",
            "tickTime",
            "maxClientCnxns",
            "minSessionTimeout",
            "maxSessionTimeout",
            "clientPortListenBacklog",
            "serverId",
        ]
    );
    assert_eq!(map["clientPort"], srv.addr.port().to_string());
    assert_eq!(map["secureClientPort"], "-1");
    let data_dir = std::path::Path::new(&map["dataDir"]);
    assert!(data_dir.is_absolute() && data_dir.ends_with("version-2"), "{out}");
    assert!(data_dir.starts_with(srv.dir.path()), "{out}");
    assert!(map["dataDirSize"].parse::<u64>().is_ok());
    assert_eq!(map["tickTime"], "200");
    assert_eq!(map["maxClientCnxns"], "60");
    assert_eq!(map["minSessionTimeout"], "400");
    assert_eq!(map["maxSessionTimeout"], "60000");
    assert_eq!(map["clientPortListenBacklog"], "-1");
    assert_eq!(map["serverId"], "0");
    assert_eq!(out.lines().count(), 12);
}

#[test]
fn envi_keeps_the_java_key_order() {
    let srv = TestServer::start();
    let out = four_letter(srv.addr, "envi");
    assert!(out.starts_with("Environment:\n"), "{out}");
    let (order, map) = pairs(&out, '=');
    assert_eq!(
        order[..15],
        [
            "zookeeper.version",
            "host.name",
            "java.version",
            "java.vendor",
            "java.home",
            "java.class.path",
            "java.library.path",
            "java.io.tmpdir",
            "java.compiler",
            "os.name",
            "os.arch",
            "os.version",
            "user.name",
            "user.home",
            "user.dir",
        ]
    );
    let memory: Vec<&str> = order[15..].iter().map(|k| k.as_str()).collect();
    let ok = memory == ["os.memory.free", "os.memory.max", "os.memory.total"]
        || memory == ["jvm.memory.free", "jvm.memory.max", "jvm.memory.total"];
    assert!(ok, "{memory:?}");
    assert!(!map["zookeeper.version"].is_empty());
}

#[test]
fn mntr_reports_key_values() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    s.create("/e1", b"abc", 1);
    s.call(op::EXISTS, &wire::path_watch("/e1", true));
    s.call(op::GET_CHILDREN, &wire::path_watch("/", true));
    let out = four_letter(srv.addr, "mntr");
    assert!(out.lines().all(|l| l.starts_with("zk_") && l.contains('\t')), "{out}");
    let (order, m) = pairs(&out, '\t');
    assert_eq!(order[..2], ["zk_version", "zk_server_state"]);
    assert_eq!(m["zk_server_state"], "standalone");
    assert_eq!(m["zk_znode_count"], "6");
    assert_eq!(m["zk_watch_count"], "2", "data + child watches");
    assert_eq!(m["zk_ephemerals_count"], "1");
    // 44 on a fresh ZooKeeper 3.8 ("" + "/" + "/zookeeper" + quota + config), plus /e1 + data.
    assert_eq!(m["zk_approximate_data_size"], (44 + 3 + 3).to_string());
    assert_eq!(m["zk_num_alive_connections"], "2");
    assert_eq!(m["zk_outstanding_requests"], "0");
    assert_eq!(m["zk_global_sessions"], "1");
    for key in [
        "zk_avg_latency",
        "zk_min_latency",
        "zk_max_latency",
        "zk_packets_received",
        "zk_packets_sent",
        "zk_open_file_descriptor_count",
        "zk_max_file_descriptor_count",
        "zk_uptime",
    ] {
        assert!(m.contains_key(key), "{key} missing from {out}");
    }
    assert!(m["zk_avg_latency"].contains('.'), "a Java double");
}

#[test]
fn wchs_wchc_wchp_report_data_watches() {
    let srv = TestServer::start();
    assert_eq!(four_letter(srv.addr, "wchs"), "0 connections watching 0 paths\nTotal watches:0\n");
    assert_eq!(four_letter(srv.addr, "wchc"), "\n");
    assert_eq!(four_letter(srv.addr, "wchp"), "\n");

    let mut s = Session::open(srv.addr);
    s.create("/a", b"", 0);
    assert_eq!(s.code(op::EXISTS, &wire::path_watch("/a", true)), 0);
    assert_eq!(s.code(op::EXISTS, &wire::path_watch("/zz", true)), -101);
    // Child watches are not reported.
    s.call(op::GET_CHILDREN, &wire::path_watch("/", true));
    assert_eq!(four_letter(srv.addr, "wchs"), "1 connections watching 2 paths\nTotal watches:2\n");
    assert_eq!(four_letter(srv.addr, "wchc"), format!("0x{:x}\n\t/a\n\t/zz\n\n", s.id));
    assert_eq!(four_letter(srv.addr, "wchp"), format!("/a\n\t0x{0:x}\n/zz\n\t0x{0:x}\n\n", s.id));

    let mut t = Session::open(srv.addr);
    assert_eq!(t.code(op::GET_DATA, &wire::path_watch("/a", true)), 0);
    assert_eq!(four_letter(srv.addr, "wchs"), "2 connections watching 2 paths\nTotal watches:3\n");
    let wchp = four_letter(srv.addr, "wchp");
    let a_block: Vec<&str> = wchp.lines().skip_while(|l| *l != "/a").skip(1).take(2).collect();
    let mut a_block: Vec<String> = a_block.iter().map(|l| l.to_string()).collect();
    a_block.sort();
    let mut want = vec![format!("\t0x{:x}", s.id), format!("\t0x{:x}", t.id)];
    want.sort();
    assert_eq!(a_block, want, "{wchp}");
}

#[test]
fn dump_lists_sessions_ephemerals_and_connections() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    s.create("/e1", b"", 1);
    s.create("/e2", b"", 1);
    let out = four_letter(srv.addr, "dump");
    assert!(out.starts_with("SessionTracker dump:\nSession Sets ("), "{out}");
    assert!(out.contains(&format!("\t0x{:x}\n", s.id)), "{out}");
    let eph = format!(
        "ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x{:x}:\n\t/e1\n\t/e2\nConnections dump:\n",
        s.id
    );
    assert!(out.contains(&eph), "{out}");
    assert!(out.contains("Connections dump:\nConnections Sets ("), "{out}");
    let conn = format!("\tip: /127.0.0.1:{} sessionId: 0x{:x}\n", local_port(&s), s.id);
    assert!(out.contains(&conn), "{out}");
    for l in out.lines().filter(|l| l.contains(" expire at ")) {
        assert!(l.ends_with(':') && l.contains(" UTC "), "Java Date format: {l}");
    }
}

#[test]
fn dirs_reports_sizes() {
    let srv = TestServer::start();
    let out = four_letter(srv.addr, "dirs");
    let l = lines(&out);
    assert_eq!(l.len(), 2, "{out}");
    assert!(l[0].strip_prefix("datadir_size: ").expect("datadir").parse::<u64>().is_ok());
    assert!(l[1].strip_prefix("logdir_size: ").expect("logdir").parse::<u64>().is_ok());
}

#[test]
fn srst_resets_server_stats() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    for i in 0..5 {
        s.create(&format!("/n{i}"), b"", 0);
    }
    assert_eq!(four_letter(srv.addr, "srst"), "Server stats reset.\n");
    let out = four_letter(srv.addr, "srvr");
    assert!(out.contains("Latency min/avg/max: 0/0.0/0\n"), "{out}");
    let received: u64 =
        out.lines().find_map(|l| l.strip_prefix("Received: ")).expect("received").parse().unwrap();
    assert!(received <= 2, "{out}");
}

#[test]
fn crst_resets_connection_stats() {
    let srv = TestServer::start();
    let mut s = Session::open(srv.addr);
    s.stat("/");
    s.stat("/");
    assert_eq!(four_letter(srv.addr, "crst"), "Connection stats reset.\n");
    let out = four_letter(srv.addr, "cons");
    let mine = format!(" /127.0.0.1:{}[", local_port(&s));
    let line = out.lines().find(|x| x.starts_with(&mine)).expect("our connection");
    assert!(line.contains("(queued=0,recved=0,sent=0,"), "{line}");
    assert!(line.contains(",lop=NA,"), "{line}");
    assert!(line.contains(",lzxid=0xffffffffffffffff,lresp=0,llat=0,"), "{line}");
    assert!(!line.contains("lcxid"), "{line}");
}

#[test]
fn words_outside_the_whitelist_are_refused_by_name() {
    let srv = TestServer::start_with(|s| {
        s.four_letter_words = ["srvr"].into_iter().collect();
    });
    for word in ["ruok", "stat", "mntr", "dump", "wchs"] {
        assert_eq!(
            four_letter(srv.addr, word),
            format!("{word} is not executed because it is not in the whitelist.\n")
        );
    }
    assert!(four_letter(srv.addr, "srvr").starts_with("Zookeeper version: "));
    // The refused connections did not disturb the server.
    let mut s = Session::open(srv.addr);
    assert!(s.stat("/").is_some());
}
