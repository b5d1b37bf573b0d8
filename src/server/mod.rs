//! The server: owns every thread that serves clients once the configuration is loaded.
//!
//! placeholder: replaced by the real server on merge. Until then [`run`] only logs the
//! configuration it was given, so that the command line can be built and tested.

use log::info;

use crate::config::ServerConfig;

/// Runs the server until it shuts down.
// placeholder: replaced by the real server on merge
pub fn run(config: ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
    info!("server placeholder: would serve clients on {}", config.client_address);
    info!("configuration: {config:?}");
    Ok(())
}
