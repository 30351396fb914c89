//! The `latchkey` binary: CLI -> telemetry -> config -> run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use latchkey::cli::{Cli, Command, SigningKeysAction};
use latchkey::config::{ProcessEnv, SecretSource, Settings};
use latchkey::startup::{Application, open_command_store};

/// Requests allocate and free many small buffers on every worker thread; mimalloc's per-thread
/// heaps do that with less work and contention than the system allocator (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `latchkey scan`'s exit code when it found a key (1 is any error).
const KEYS_FOUND: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("latchkey: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
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
            Command::Scan { files } => return scan(&settings, files),
            Command::Openapi => {
                println!(
                    "{}",
                    latchkey::routes::api::openapi::document(&settings.public_url)
                );
            }
            Command::SigningKeys {
                action: SigningKeysAction::Rotate { json },
            } => {
                let (current, previous) = settings.derived_secrets()?;
                let cipher = latchkey::tokens::signing::KeyCipher::new(&current, &previous);
                let (algorithm, ttl) = (settings.signing_algorithm, settings.token_ttl_seconds);
                let store = open_command_store(&settings).await?;
                let rotated = tokio::task::spawn_blocking(move || {
                    let mut conn = store.conn()?;
                    let at = latchkey::store::now();
                    latchkey::tokens::signing::rotate(&mut conn, &cipher, algorithm, ttl, at)
                })
                .await??;
                if json {
                    println!("{}", serde_json::json!({ "rotated": rotated }));
                } else if rotated.is_empty() {
                    println!("No tenant signs tokens yet: nothing to rotate");
                }
                for one in rotated.iter().filter(|_| !json) {
                    println!(
                        "Tenant {}: new {} signing key {} signs from now on; {} retired key(s) \
                         stay in its JWKS until {}",
                        one.tenant_id,
                        one.algorithm,
                        one.kid,
                        one.retired,
                        one.retired_keys_removed_after
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `latchkey scan`: one line per key found, and exit code 3 if there was any. It never makes a
/// secret up: without one to check against, it would find nothing and say so falsely.
fn scan(settings: &Settings, mut files: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    if let SecretSource::Generated { path, .. } = &settings.secret {
        anyhow::ensure!(
            path.exists(),
            "no secret to check keys against: set LATCHKEY_SECRET_KEY or LATCHKEY_SECRET_KEY_FILE, \
             or run in the directory whose data/ holds the deployment's secret.key"
        );
    }
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
    if total == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("latchkey: found {total} key(s) valid under this deployment's secrets");
    Ok(ExitCode::from(KEYS_FOUND))
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
