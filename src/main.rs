//! The `latchkey` binary: CLI -> telemetry -> config -> run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use latchkey::cli::{Cli, Command, SigningKeysAction};
use latchkey::config::{ProcessEnv, Settings};
use latchkey::startup::{Application, open_command_store};

/// Requests allocate and free many small buffers on every worker thread; mimalloc's per-thread
/// heaps do that with less work and contention than the system allocator (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("latchkey: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&ProcessEnv, cli.config.as_deref())?;
    latchkey::telemetry::init(settings.log_format);
    actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                Application::build(settings)
                    .await?
                    .run_until_stopped()
                    .await?;
                tracing::info!("latchkey stopped");
            }
            Command::Migrate => {
                open_command_store(&settings).await?;
                println!("migrations are up to date");
            }
            Command::Bootstrap {
                tenant,
                email,
                json,
            } => {
                let hasher = settings.key_hasher()?;
                let store = open_command_store(&settings).await?;
                let password = std::env::var("LATCHKEY_BOOTSTRAP_PASSWORD")
                    .ok()
                    .filter(|p| !p.is_empty());
                let done = tokio::task::spawn_blocking(move || {
                    latchkey::bootstrap::bootstrap(&store, &hasher, &tenant, &email, password)
                })
                .await??;
                print_bootstrapped(&done, json);
            }
            Command::Scan { files } => scan(&settings, files)?,
            Command::SigningKeys {
                action: SigningKeysAction::Rotate { json },
            } => {
                let (current, previous) = settings.derived_secrets()?;
                let cipher = latchkey::tokens::signing::KeyCipher::new(&current, &previous);
                let (algorithm, ttl) = (settings.signing_algorithm, settings.token_ttl_seconds);
                let store = open_command_store(&settings).await?;
                let rotated = tokio::task::spawn_blocking(move || {
                    let mut conn = store.conn()?;
                    latchkey::tokens::signing::rotate(&mut conn, &cipher, algorithm, ttl)
                })
                .await??;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string(&rotated).expect("rotation output serializes")
                    );
                } else {
                    println!(
                        "New {} signing key {} signs from now on; {} retired key(s) stay in the \
                         JWKS until {}",
                        rotated.algorithm,
                        rotated.kid,
                        rotated.retired,
                        rotated.retired_keys_removed_after
                    );
                }
            }
        }
        Ok(())
    })
}

/// `latchkey scan`: one line per key found, and an error (exit 1) if there was any.
fn scan(settings: &Settings, mut files: Vec<PathBuf>) -> anyhow::Result<()> {
    let hasher = settings.key_hasher()?;
    if files.is_empty() {
        files.push(PathBuf::from("-"));
    }
    let mut total = 0;
    for path in &files {
        let findings = latchkey::scan::scan_path(&hasher, path)
            .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
        for finding in &findings {
            println!(
                "{}:{}: latchkey key {}…",
                path.display(),
                finding.line,
                finding.start
            );
        }
        total += findings.len();
    }
    anyhow::ensure!(
        total == 0,
        "found {total} key(s) valid under this deployment's secrets"
    );
    Ok(())
}

fn print_bootstrapped(done: &latchkey::bootstrap::Bootstrapped, json: bool) {
    println!("Created tenant `{}` ({})", done.tenant, done.tenant_id);
    match &done.password {
        Some(password) => println!(
            "Owner {} with generated password (shown once): {}",
            done.email,
            secrecy::ExposeSecret::expose_secret(password)
        ),
        None => println!("Owner {}", done.email),
    }
    println!("Root key {} (shown once; store it now):", done.root_key_id);
    println!("  {}", done.root_key.expose_secret());
    if json {
        println!(
            "{}",
            serde_json::to_string(done).expect("bootstrap output serializes")
        );
    }
}
