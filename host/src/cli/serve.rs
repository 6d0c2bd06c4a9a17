//! `passerelle serve`: the HTTP API, the web console, the scheduler, hot add of plugin files
//! and webhook deliveries, until Ctrl-C.

use super::exit::refused;
use crate::engine::Engine;
use crate::settings::HostFile;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Serves until the process is stopped; flags win over `[server]` of host.toml.
pub async fn serve(
    engine: Engine,
    host_file: &HostFile,
    listen: SocketAddr,
    secure_cookies: bool,
    trust_proxy: bool,
) -> anyhow::Result<ExitCode> {
    let web = crate::server::WebOptions {
        secure_cookies: secure_cookies || host_file.server.secure_cookies,
        trust_proxy: trust_proxy || host_file.server.trust_proxy,
    };
    let engine = std::sync::Arc::new(engine);
    let _scheduler = crate::scheduler::spawn(engine.clone());
    let _hot_add = crate::hot::spawn(engine.clone());
    let _deliveries = crate::events::delivery::spawn(engine.clone()).map_err(refused)?;
    crate::server::serve(engine, listen, web).await?;
    Ok(ExitCode::SUCCESS)
}
