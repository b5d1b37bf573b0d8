//! rzk-server (interim): `rzk-server PORT DATADIR [TICKTIME] [MAXCNXNS]`. The full zoo.cfg
//! command line replaces this.
use std::time::Duration;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: rzk-server PORT DATADIR [TICKTIME] [MAXCNXNS]");
        std::process::exit(2);
    }
    let Ok(port) = args[0].parse::<u16>() else {
        eprintln!("Invalid config, exiting abnormally: bad port {}", args[0]);
        std::process::exit(2);
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = rzk::server::Settings::new(addr, args[1].clone().into());
    if let Some(t) = args.get(2).and_then(|t| t.parse::<u64>().ok()) {
        s.tick = Duration::from_millis(t);
        s.min_session_timeout_ms = 2 * t as i32;
        s.max_session_timeout_ms = 20 * t as i32;
    }
    if let Some(m) = args.get(3).and_then(|t| t.parse::<usize>().ok()) {
        s.max_client_cnxns = m;
    }
    s.four_letter_words = ["*".to_owned()].into_iter().collect();
    s.extended_types = true;
    if let Err(e) = rzk::server::run_standalone(s) {
        eprintln!("rzk-server: {e}");
        std::process::exit(1);
    }
}
