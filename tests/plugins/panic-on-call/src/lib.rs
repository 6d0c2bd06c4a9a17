//! A plugin that loads fine, then misbehaves when called: it panics with its secret in the
//! message, or hangs, as its configuration says. The host must contain the panic, redact the
//! secret and abandon the hanging call at the deadline.

use passerelle_plugin_api::prelude::*;
use std::time::Duration;

pub struct PanicOnCall;

/// What the plugin does when called.
#[derive(Deserialize, JsonSchema, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Panic
    #[default]
    Panic,
    /// Hang
    Hang,
    /// Succeed
    Succeed,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Behaviour
    ///
    /// What to do when called.
    #[serde(default)]
    pub behaviour: Behaviour,
    /// Token
    ///
    /// A secret that the panic message leaks on purpose.
    pub token: Option<Secret>,
}

fn misbehave(config: &Config, host: &Host<'_>) {
    let token = config.token.as_ref().map(Secret::expose).unwrap_or("none");
    host.log(
        LogLevel::Warn,
        format!("about to misbehave with token {token}"),
    );
    match config.behaviour {
        Behaviour::Panic => panic!("boom with token {token}"),
        Behaviour::Hang => loop {
            std::thread::sleep(Duration::from_millis(50));
        },
        Behaviour::Succeed => {}
    }
}

/// Echoes its input.
pub struct Echo;

impl Operation for Echo {
    const NAME: &'static str = "other.echo";
    type Input = serde_json::Value;
    type Output = serde_json::Value;
}

impl Plugin for PanicOnCall {
    type Config = Config;

    fn manifest() -> Manifest {
        let mut m = Manifest::new("panic-on-call", "Panics on call", "0.1.0", Category::Other);
        m.capabilities = vec![Echo::NAME.into()];
        m
    }

    fn test(config: &Config, host: &Host<'_>) -> TestReport {
        misbehave(config, host);
        let mut report = TestReport::new();
        report.step("behave", || Ok(Check::ok((), "behaved")));
        report.finish("fine")
    }

    fn invoke(call: Call<'_>, config: &Config, host: &Host<'_>) -> Result<Reply, PluginError> {
        misbehave(config, host);
        call.serve::<Echo>(Ok)
    }
}

export_plugin!(PanicOnCall);
