//! The command line: `serve` (default), `migrate`, `bootstrap`, `signing-keys rotate`, `scan`,
//! `openapi`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about = "Multi-tenant API key management")]
pub struct Cli {
    /// Optional TOML settings file; environment variables override it (also LATCHKEY_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a tenant, its owner and a root key with every root scope (printed once).
    Bootstrap {
        /// The tenant's name; refused if a tenant of this name exists (run twice, it changes nothing).
        #[arg(long)]
        tenant: String,
        /// The owner's e-mail; the password comes from LATCHKEY_BOOTSTRAP_PASSWORD or is generated.
        #[arg(long)]
        email: String,
        /// End with one JSON object on stdout (machine-readable).
        #[arg(long)]
        json: bool,
    },
    /// Find this deployment's keys in files (logs, dumps, a checkout) and exit 1 if there are
    /// any. Only keys with a valid check tag count; each is shown by its start, never in full.
    Scan {
        /// Files to read; `-` or none reads stdin.
        files: Vec<PathBuf>,
    },
    /// Print the OpenAPI description `/openapi.json` serves (its `servers` from
    /// LATCHKEY_PUBLIC_URL) and exit.
    Openapi,
    /// Manage the keys that sign OAuth access tokens.
    SigningKeys {
        #[command(subcommand)]
        action: SigningKeysAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeysAction {
    /// Add a new signing key (of LATCHKEY_SIGNING_ALGORITHM) that signs from now on; the old
    /// ones keep verifying until every token they signed has expired, then leave the JWKS.
    Rotate {
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
}
