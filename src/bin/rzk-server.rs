//! rzk-server: parses the command line and configuration, then runs the server: standalone
//! (ZooKeeperServerMain) or, with `server.N` lines, as a quorum peer (QuorumPeerMain). This is
//! where the two are told apart; `rzk::server` knows nothing of the quorum.
//!
//! The only place that initialises logging (env_logger: info by default, `RUST_LOG`
//! overrides) and the only place that exits the process: a panic in any thread is logged with
//! the thread's name and ends the process with status 1, and so does a critical thread's
//! unrecoverable error, which `rzk::server::run_standalone` / `rzk::quorum::peer::run` return
//! (ZooKeeper's "Severe unrecoverable error, exiting"). Everything else is in [`rzk::cli`],
//! where it is tested.

use std::io;
use std::process::ExitCode;

use log::{error, info};
use rzk::config::ServerConfig;

/// The request pipeline allocates on one thread and frees on another (cnxn/prep -> apply);
/// mimalloc's per-thread free lists make that cheap where glibc malloc spends ~10% of the
/// server's CPU under write load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    install_panic_hook();
    // FAILPOINTS=name=action;... arms fault points (test builds only).
    #[cfg(feature = "failpoints")]
    let _faults = fail::FailScenario::setup();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let server_jvmflags = std::env::var("SERVER_JVMFLAGS").ok();
    let status = rzk::cli::main_with(
        &args,
        server_jvmflags.as_deref(),
        &mut io::stdout(),
        &mut io::stderr(),
        run,
    );
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}

/// Standalone or quorum peer, like QuorumPeerMain: a single participant with
/// `standaloneEnabled` runs standalone.
fn run(config: ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(q) = &config.quorum {
        let standalone =
            config.standalone_enabled && q.participants().count() == 1 && q.servers.len() == 1;
        if !standalone {
            return rzk::quorum::peer::run(config);
        }
        info!("a single server in the ensemble and standaloneEnabled: running standalone");
    }
    rzk::server::run_standalone(config)
}

/// Every thread is critical: a panic anywhere is logged and ends the process at once, so that
/// no part of the server keeps answering (health checks included) while another is dead.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let backtrace = std::backtrace::Backtrace::force_capture();
        error!("Severe unrecoverable error, from thread {name}: {info}, exiting\n{backtrace}");
        std::process::exit(1);
    }));
}
