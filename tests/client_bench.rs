//! rzk-bench against a real server: every op kind runs, reports JSON, and cleans up.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::connect;
use harness::target::shared_server;

#[test]
fn every_op_kind_reports_json_and_cleans_up() {
    let Some(server) = shared_server() else { return };
    let s = server.connect_string();
    for (i, op) in
        ["create", "set", "get", "exists", "mixed:70", "watch", "delete"].iter().enumerate()
    {
        let root = format!("/bench-test-{i}");
        let out = Command::new(env!("CARGO_BIN_EXE_rzk-bench"))
            .args(["--connect", &s, "--sessions", "2", "--inflight", "4", "--op", op])
            .args(["--size", "10", "--znodes", "50", "--ops", "300", "--json", "--root", &root])
            .output()
            .expect("run rzk-bench");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{op}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        let line = stdout.trim();
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        for key in ["ops_per_sec", "p50_us", "p99_us", "p999_us", "max_us", "errors"] {
            assert!(line.contains(&format!("\"{key}\":")), "{key} missing in {line}");
        }
        assert!(line.contains("\"errors\":0"), "{line}");
        // delete runs at most one op per pre-populated znode.
        let ops = if *op == "delete" { 50 } else { 300 };
        assert!(line.contains(&format!("\"ops\":{ops},")), "{line}");
        let (c, _) = connect(&s, Duration::from_secs(30));
        assert_eq!(c.exists(&root, false).unwrap(), None, "{op} left {root} behind");
    }
}
