use std::process::ExitCode;

use ringrelay_server::config::Config;
use ringrelay_server::startup::Application;
use ringrelay_server::telemetry;

/// A webhook allocates and frees many small, short-lived buffers (the
/// form, markup, Redis commands and answers) from two kinds of threads:
/// with glibc's allocator that was a fifth of the service's CPU on a new
/// call (BENCHMARKS.md, issue 23), with mimalloc's thread-local free lists a
/// fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: ringrelay\n       ringrelay simulate SCENARIO.toml [--json] [--target URL]\n\nServes the ringrelay HTTP API. Configuration is read from the environment\n(and a .env file when present); see README.md. `simulate` plays a whole call\nagainst the service (see `ringrelay simulate --help`).";

#[tokio::main]
async fn main() -> ExitCode {
    if let Some(arg) = std::env::args().nth(1) {
        return match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                ExitCode::SUCCESS
            }
            "simulate" => ringrelay_simulator::cli::main(std::env::args().skip(2)).await,
            "-V" | "--version" => {
                println!("ringrelay {}", env!("CARGO_PKG_VERSION"));
                ExitCode::SUCCESS
            }
            other => {
                eprintln!("ringrelay: unexpected argument {other:?}\n{USAGE}");
                ExitCode::from(2)
            }
        };
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ringrelay: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config);
    raise_open_files_limit();
    let shutdown = shutdown_signal();
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("ringrelay: cannot start: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ringrelay: server error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Every connection and live stream is a file descriptor: with the usual
/// soft limit of 1024, a thousand idle clients would stop the instance while
/// the hard limit allows far more (docs/operations.md).
fn raise_open_files_limit() {
    #[cfg(unix)]
    match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, hard)) => match rlimit::increase_nofile_limit(hard) {
            Ok(raised) => tracing::info!(soft, hard, raised, "open files limit"),
            Err(err) => {
                tracing::warn!(soft, hard, error = %err, "could not raise the open files limit")
            }
        },
        Err(err) => tracing::warn!(error = %err, "could not read the open files limit"),
    }
}

/// SIGTERM (platforms stopping the process) or SIGINT (Ctrl-C), listened
/// for from the moment this is called: before the service says it listens,
/// so that a stop sent right after that line still drains gracefully.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Err(err), _) | (_, Err(err)) => {
                    eprintln!("ringrelay: cannot listen for SIGTERM or SIGINT: {err}");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
