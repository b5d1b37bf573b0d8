//! rzk-server: parses the command line and configuration, then runs the server.
//!
//! The only place that initialises logging (env_logger: info by default, `RUST_LOG`
//! overrides) and the only place that exits the process. Everything else is in
//! [`rzk::cli`], where it is tested.

use std::io;
use std::process::ExitCode;

/// The request pipeline allocates on one thread and frees on another (cnxn/prep -> apply);
/// mimalloc's per-thread free lists make that cheap where glibc malloc spends ~10% of the
/// server's CPU under write load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let server_jvmflags = std::env::var("SERVER_JVMFLAGS").ok();
    let status = rzk::cli::main_with(
        &args,
        server_jvmflags.as_deref(),
        &mut io::stdout(),
        &mut io::stderr(),
        rzk::server::run,
    );
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
