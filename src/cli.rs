//! The `rzk-server` command line, as functions the binary calls and tests drive.
//!
//! ```text
//! rzk-server [-D<name>=<value>]... [--help | --version]
//! rzk-server [-D<name>=<value>]... [CONFIG_FILE]
//! rzk-server [-D<name>=<value>]... PORT DATADIR [TICKTIME [MAXCNXNS]]
//! ```
//!
//! The two argument forms are Apache's: QuorumPeerMain's `configfile` and ZooKeeperServerMain's
//! `port datadir [ticktime] [maxcnxns]`. With no argument the built-in copy of `conf/zoo.cfg`
//! is used (Apache prints its usage instead). `-D` flags may appear anywhere and, after those
//! from the `SERVER_JVMFLAGS` environment variable, become system properties (see
//! [`crate::config`] for how they combine with zoo.cfg).
//!
//! Exit statuses follow Apache's `ExitCode`: 2 for invalid arguments or configuration, 1 when
//! the server fails after starting, 0 otherwise. The binary owns logging setup and the process;
//! nothing here exits or touches global state, so every path is unit-tested.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use getopts::Options;

use crate::config::{ConfigError, ServerConfig, SystemProperties};

/// Exit status for a clean shutdown, `--help` and `--version`.
pub const EXIT_OK: i32 = 0;
/// Exit status when the server fails after a valid start [ExitCode.UNEXPECTED_ERROR].
pub const EXIT_UNEXPECTED_ERROR: i32 = 1;
/// Exit status for bad arguments or an invalid configuration [ExitCode.INVALID_INVOCATION].
pub const EXIT_INVALID_INVOCATION: i32 = 2;

/// The configuration used when no argument is given: `conf/zoo.cfg` as built.
pub const DEFAULT_CONFIG: &str = include_str!("../conf/zoo.cfg");

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// `--help`.
    Help,
    /// `--version`.
    Version,
    /// Run a server configured from this source.
    Serve(ConfigSource),
}

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// No argument: the built-in [`DEFAULT_CONFIG`].
    BuiltIn,
    /// `CONFIG_FILE`.
    File(PathBuf),
    /// `PORT DATADIR [TICKTIME [MAXCNXNS]]`, unparsed (the config module validates them).
    ShortForm {
        /// Client port.
        port: String,
        /// Data directory.
        data_dir: String,
        /// Tick time in ms.
        tick_time: Option<String>,
        /// Connections per client IP.
        max_client_cnxns: Option<String>,
    },
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// What to do.
    pub invocation: Invocation,
    /// `-D` flags from `SERVER_JVMFLAGS`, then from the command line.
    pub system_properties: SystemProperties,
}

/// The command line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.reason)
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name; `server_jvmflags` is the value of the
/// `SERVER_JVMFLAGS` environment variable, if set (whitespace-separated JVM flags).
pub fn parse_args<S: AsRef<str>>(
    args: &[S],
    server_jvmflags: Option<&str>,
) -> Result<Args, UsageError> {
    let mut system_properties =
        SystemProperties::from_jvm_flags(server_jvmflags.unwrap_or_default().split_whitespace());
    let mut rest = Vec::new();
    for arg in args {
        let arg = arg.as_ref();
        if !system_properties.add_jvm_flag(arg) {
            rest.push(arg);
        }
    }
    let matches = options().parse(&rest).map_err(|e| UsageError { reason: e.to_string() })?;
    let invocation = if matches.opt_present("help") {
        Invocation::Help
    } else if matches.opt_present("version") {
        Invocation::Version
    } else {
        let mut free = matches.free.into_iter();
        match free.len() {
            0 => Invocation::Serve(ConfigSource::BuiltIn),
            1 => Invocation::Serve(ConfigSource::File(free.next().unwrap_or_default().into())),
            2..=4 => Invocation::Serve(ConfigSource::ShortForm {
                port: free.next().unwrap_or_default(),
                data_dir: free.next().unwrap_or_default(),
                tick_time: free.next(),
                max_client_cnxns: free.next(),
            }),
            _ => return Err(UsageError { reason: "too many arguments".to_string() }),
        }
    };
    Ok(Args { invocation, system_properties })
}

/// The usage text printed by `--help` and after a usage error.
pub fn usage() -> String {
    let brief = "Usage: rzk-server [-Dname=value]... [CONFIG_FILE | PORT DATADIR [TICKTIME \
                 [MAXCNXNS]]]\n\n\
                 Runs a ZooKeeper-compatible server. CONFIG_FILE is a zoo.cfg; without one the \
                 built-in\nconf/zoo.cfg is used (clientPort 2181 on 127.0.0.1, dataDir ./data). \
                 The short form\nruns a standalone server on PORT with DATADIR, like \
                 ZooKeeperServerMain. -D flags\n(also read from SERVER_JVMFLAGS) set Java system \
                 properties such as\n-Dzookeeper.snapCount=1000; zoo.cfg keys take precedence. \
                 RUST_LOG sets the log level.";
    options().usage(brief)
}

/// Builds the configuration from `source`, with `system` properties under it.
pub fn load_config(
    source: &ConfigSource,
    system: &SystemProperties,
) -> Result<ServerConfig, ConfigError> {
    match source {
        ConfigSource::BuiltIn => {
            log::info!("no config file given; using the built-in conf/zoo.cfg");
            ServerConfig::from_text(DEFAULT_CONFIG, system)
        }
        ConfigSource::File(path) => ServerConfig::load(path, system),
        ConfigSource::ShortForm { port, data_dir, tick_time, max_client_cnxns } => {
            ServerConfig::from_short_form(
                port,
                data_dir,
                tick_time.as_deref(),
                max_client_cnxns.as_deref(),
                system,
            )
        }
    }
}

/// The whole program after logging is set up: parses `args`, loads the configuration, calls
/// `run` with it, and returns the exit status. Messages go to `stdout`/`stderr` as Apache's
/// mains print them.
pub fn main_with<S, F>(
    args: &[S],
    server_jvmflags: Option<&str>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    run: F,
) -> i32
where
    S: AsRef<str>,
    F: FnOnce(ServerConfig) -> Result<(), Box<dyn std::error::Error>>,
{
    // Output errors are ignored: there is nowhere left to report them.
    let args = match parse_args(args, server_jvmflags) {
        Ok(args) => args,
        Err(e) => {
            let _ = write!(stderr, "Invalid arguments, exiting abnormally\n{e}\n{}", usage());
            return EXIT_INVALID_INVOCATION;
        }
    };
    let source = match args.invocation {
        Invocation::Help => {
            let _ = write!(stdout, "{}", usage());
            return EXIT_OK;
        }
        Invocation::Version => {
            let _ = writeln!(stdout, "rzk-server {}", env!("CARGO_PKG_VERSION"));
            return EXIT_OK;
        }
        Invocation::Serve(source) => source,
    };
    let config = match load_config(&source, &args.system_properties) {
        Ok(config) => config,
        Err(e) if matches!(source, ConfigSource::ShortForm { .. }) => {
            let _ = write!(stderr, "Invalid arguments, exiting abnormally\n{e}\n{}", usage());
            return EXIT_INVALID_INVOCATION;
        }
        Err(e) => {
            let _ = writeln!(stderr, "Invalid config, exiting abnormally\n{e}");
            return EXIT_INVALID_INVOCATION;
        }
    };
    match run(config) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(stderr, "Unexpected exception, exiting abnormally\n{e}");
            EXIT_UNEXPECTED_ERROR
        }
    }
}

fn options() -> Options {
    let mut options = Options::new();
    options.optflag("h", "help", "print this help and exit");
    options.optflag("", "version", "print the version and exit");
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        parse_args(list, None).unwrap()
    }

    /// Runs `main_with`, returning the status, stdout, stderr and the config `run` received.
    fn main(list: &[&str], jvmflags: Option<&str>) -> (i32, String, String, Option<ServerConfig>) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut seen = None;
        let status = main_with(list, jvmflags, &mut out, &mut err, |config| {
            seen = Some(config);
            Ok(())
        });
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (status, text(out), text(err), seen)
    }

    #[test]
    fn config_file_form() {
        let a = args(&["conf/zoo.cfg"]);
        assert_eq!(a.invocation, Invocation::Serve(ConfigSource::File("conf/zoo.cfg".into())));
        assert!(a.system_properties.is_empty());
    }

    #[test]
    fn short_form_with_optional_arguments() {
        let a = args(&["2181", "/tmp/zk"]);
        let expected = Invocation::Serve(ConfigSource::ShortForm {
            port: "2181".into(),
            data_dir: "/tmp/zk".into(),
            tick_time: None,
            max_client_cnxns: None,
        });
        assert_eq!(a.invocation, expected);
        let a = args(&["2181", "/tmp/zk", "2000", "10"]);
        let expected = Invocation::Serve(ConfigSource::ShortForm {
            port: "2181".into(),
            data_dir: "/tmp/zk".into(),
            tick_time: Some("2000".into()),
            max_client_cnxns: Some("10".into()),
        });
        assert_eq!(a.invocation, expected);
    }

    #[test]
    fn no_arguments_use_the_built_in_config() {
        assert_eq!(args(&[]).invocation, Invocation::Serve(ConfigSource::BuiltIn));
        let config = load_config(&ConfigSource::BuiltIn, &SystemProperties::new()).unwrap();
        assert_eq!(config.client_address, "127.0.0.1:2181".parse().unwrap());
    }

    #[test]
    fn d_flags_anywhere_and_from_server_jvmflags() {
        let a = parse_args(
            &["-Dzookeeper.snapCount=5", "zoo.cfg", "-Dzookeeper.forceSync=no"],
            Some("  -Xmx1g -Dzookeeper.snapCount=1 -Dzookeeper.log.dir=/var/log "),
        )
        .unwrap();
        assert_eq!(a.invocation, Invocation::Serve(ConfigSource::File("zoo.cfg".into())));
        let p = &a.system_properties;
        // The command line comes after SERVER_JVMFLAGS, so it wins.
        assert_eq!(p.get("zookeeper.snapCount"), Some("5"));
        assert_eq!(p.get("zookeeper.forceSync"), Some("no"));
        assert_eq!(p.get("zookeeper.log.dir"), Some("/var/log"));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(args(&["--help"]).invocation, Invocation::Help);
        assert_eq!(args(&["-h", "zoo.cfg"]).invocation, Invocation::Help);
        assert_eq!(args(&["--version"]).invocation, Invocation::Version);
        let (status, out, err, seen) = main(&["--help"], None);
        assert_eq!(status, EXIT_OK);
        assert!(out.starts_with("Usage: rzk-server"), "{out}");
        assert!(err.is_empty() && seen.is_none());
        let (status, out, _, _) = main(&["--version"], None);
        assert_eq!(status, EXIT_OK);
        assert_eq!(out, format!("rzk-server {}\n", env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn usage_errors_exit_2() {
        assert!(parse_args(&["--bogus"], None).is_err());
        assert!(parse_args(&["-Xmx1g", "zoo.cfg"], None).is_err());
        let e = parse_args(&["1", "2", "3", "4", "5"], None).unwrap_err();
        assert_eq!(e.reason, "too many arguments");
        let (status, out, err, seen) = main(&["1", "2", "3", "4", "5"], None);
        assert_eq!(status, EXIT_INVALID_INVOCATION);
        assert!(out.is_empty() && seen.is_none());
        assert!(err.starts_with("Invalid arguments, exiting abnormally\ntoo many arguments\n"));
        assert!(err.contains("Usage: rzk-server"));
    }

    #[test]
    fn config_errors_exit_2_with_the_reason() {
        let (status, _, err, seen) = main(&["/nonexistent/zoo.cfg"], None);
        assert_eq!(status, EXIT_INVALID_INVOCATION);
        assert!(seen.is_none());
        assert!(
            err.starts_with("Invalid config, exiting abnormally\ncannot read config file"),
            "{err}"
        );
        let (status, _, err, _) = main(&[], Some("-Dzookeeper.snapCount=lots"));
        assert_eq!(status, EXIT_INVALID_INVOCATION);
        assert_eq!(
            err,
            "Invalid config, exiting abnormally\n\
             invalid value \"lots\" for -Dzookeeper.snapCount: not an integer\n"
        );
        let (status, _, err, _) = main(&["port", "/tmp/zk"], None);
        assert_eq!(status, EXIT_INVALID_INVOCATION);
        assert!(err.starts_with("Invalid arguments, exiting abnormally\ninvalid value"), "{err}");
    }

    #[test]
    fn valid_config_reaches_run_and_its_error_exits_1() {
        let (status, _, err, seen) = main(&["0", "/tmp/rzk-cli-test", "500"], Some("-Dx=y"));
        assert_eq!(status, EXIT_OK, "{err}");
        let config = seen.unwrap();
        assert_eq!(config.client_address.port(), 0);
        assert_eq!(config.tick_time.as_millis(), 500);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let status = main_with(&["2181", "/tmp/zk"], None, &mut out, &mut err, |_| {
            Err("address in use".into())
        });
        assert_eq!(status, EXIT_UNEXPECTED_ERROR);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "Unexpected exception, exiting abnormally\naddress in use\n"
        );
    }
}
