//! The command line: `ringrelay simulate SCENARIO.toml [--json] [--target URL]`.

use std::process::ExitCode;

use secrecy::SecretString;

use super::cpaas::kit::Cpaas;
use super::scenario::Scenario;
use super::{Error, Options, Target};
use ringrelay_server::notify::signing::WebhookSecret;

const USAGE: &str = "usage: ringrelay simulate SCENARIO.toml [--json] [--target URL]

Plays a whole call (phone, carrier, CPaaS, destinations, caller) against the
service and prints what happened, on the scenario's provider: Twilio, Plivo,
Telnyx or SignalWire. Without --target it starts the service in-process;
with --target it drives that deployment, with these from the environment:
ADMIN_TOKEN, WEBHOOK_SECRET, PUBLIC_BASE_URL (default: the target URL), and
the provider's secret: TWILIO_AUTH_TOKEN, PLIVO_AUTH_TOKEN,
SIGNALWIRE_SIGNING_KEY, or for Telnyx TELNYX_SIMULATOR_PRIVATE_KEY (a test key
whose public half the target has as TELNYX_PUBLIC_KEY). The destinations'
webhooks go to the simulator's own receiver on this machine, so the target
needs ALLOW_PRIVATE_WEBHOOKS=true.

Exit status: 0 the call ran, 1 the service broke the contract, 2 bad scenario.";

/// What the command line asks for.
enum Command {
    Help,
    Simulate(Args),
}

struct Args {
    scenario: String,
    json: bool,
    target: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let (mut scenario, mut json, mut target) = (None, false, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--json" => json = true,
            "--target" => target = Some(args.next().ok_or("--target needs a URL")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if scenario.is_some() => return Err(format!("unexpected argument {arg:?}")),
            _ => scenario = Some(arg),
        }
    }
    Ok(Command::Simulate(Args {
        scenario: scenario.ok_or("which scenario? Give the path of its TOML file")?,
        json,
        target,
    }))
}

/// Runs `ringrelay simulate` with the arguments after `simulate`.
pub async fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args = match parse_args(args) {
        Ok(Command::Simulate(args)) => args,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("ringrelay simulate: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match simulate(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        // Which file, then which key of it.
        Err(err @ Error::Scenario(_)) => {
            eprintln!("{}: {err}", args.scenario);
            ExitCode::from(err.exit_code())
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(err.exit_code())
        }
    }
}

async fn simulate(args: &Args) -> Result<(), Error> {
    let text = std::fs::read_to_string(&args.scenario).map_err(|e| {
        Error::Scenario(super::ScenarioError {
            key: "file".into(),
            problem: format!("cannot be read: {e}"),
        })
    })?;
    let scenario: Scenario = text.parse()?;
    if args.target.is_some() {
        scenario.check_target()?;
    }
    let target = args
        .target
        .as_deref()
        .map(|url| target_from_env(url, scenario.provider))
        .transpose()?;
    let report = super::run(scenario, Options { target }).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
        );
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

/// The deployment's secrets, from the environment.
fn target_from_env(url: &str, provider: Cpaas) -> Result<Target, Error> {
    let var = |name: &'static str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| missing(name))
    };
    Ok(Target {
        url: url.trim_end_matches('/').to_owned(),
        public_base_url: std::env::var("PUBLIC_BASE_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| url.to_owned()),
        admin_token: SecretString::from(var("ADMIN_TOKEN")?),
        // While a credential rotates its variable holds `current,next`: the
        // simulator plays the provider with the current value, and checks
        // webhooks with the current secret (they carry a signature by each).
        provider_token: SecretString::from(current_value(&var(signing_secret_variable(provider))?)),
        webhook_secret: WebhookSecret::parse(current_value(&var("WEBHOOK_SECRET")?)).map_err(
            |problem| {
                Error::Scenario(super::ScenarioError {
                    key: "WEBHOOK_SECRET".into(),
                    problem,
                })
            },
        )?,
    })
}

/// The variable holding the secret the simulator signs with to drive a
/// `--target`: the provider's auth token or signing key, shared with the
/// deployment; for Telnyx, which signs with a private key of its own, the
/// base64 seed of a test key pair whose public key the deployment has as
/// `TELNYX_PUBLIC_KEY`.
fn signing_secret_variable(provider: Cpaas) -> &'static str {
    match provider {
        Cpaas::Telnyx => "TELNYX_SIMULATOR_PRIVATE_KEY",
        Cpaas::Twilio | Cpaas::Plivo | Cpaas::SignalWire => provider.credential_variable(),
    }
}

/// The current value of a variable that may hold `current,next`.
fn current_value(value: &str) -> &str {
    value.split(',').next().unwrap_or(value).trim()
}

fn missing(variable: &str) -> Error {
    Error::Scenario(super::ScenarioError {
        key: variable.to_owned(),
        problem: "must be set in the environment to drive a --target".into(),
    })
}
