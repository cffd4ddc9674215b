//! `wasmproc key new`: make an API key and the configuration that
//! accepts it. The key is printed once and never stored: the server's
//! configuration holds only its SHA-256.
//!
//! Nothing here talks to a server or touches a file: the command prints,
//! and the operator pastes the table into the configuration and restarts
//! the server. The server hashes whatever bearer secret it is given,
//! `wpk_` prefix included, and compares it with every configured hash, so
//! the key works exactly as printed.

use std::process::ExitCode;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use wasmproc::config::{Role, valid_key_name};

/// Random bytes in a key: 256 bits, as many as the hash keeps.
const KEY_BYTES: usize = 32;

/// Arguments of `wasmproc key new`.
#[derive(Debug, clap::Args)]
pub(crate) struct NewKeyArgs {
    /// Who holds the key (A-Z, a-z, 0-9, '.', '_', '-'; at most 64):
    /// recorded as the owner of its jobs.
    #[arg(long)]
    name: String,
    /// `read`, `execute` or `admin`.
    ///
    /// `read` lists and describes processes; `execute` also runs them and
    /// sees its own jobs; `admin` also deploys, replaces and undeploys, and
    /// sees every job.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// Bound on the bytes its jobs keep stored (inputs, results, logs).
    ///
    /// Past it, this key's new jobs get 507 while other keys go on. Left
    /// out, the table has no `max_stored_bytes` and only the server-wide
    /// `execution.max_stored_bytes` bounds the key.
    #[arg(long)]
    max_stored_bytes: Option<u64>,
}

/// Clap's parser for `--role`: the names the configuration uses
/// (`Role::as_str`), so what is typed is what the table says.
fn parse_role(text: &str) -> Result<Role, String> {
    match text {
        "read" => Ok(Role::Read),
        "execute" => Ok(Role::Execute),
        "admin" => Ok(Role::Admin),
        _ => Err(format!("'{text}' is not a role: read, execute or admin")),
    }
}

/// A new random key: `wpk_` and 32 random bytes in URL-safe base64 (the
/// prefix lets secret scanners and people recognise it).
fn new_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    Ok(format!(
        "wpk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Print the key (stdout's first line, for scripts) and the
/// `[[auth.keys]]` table to add to the configuration.
///
/// The name is checked with the server's own rule (`valid_key_name`)
/// before any key is made, so a table that the server would refuse at
/// start-up is never printed; a bad name exits 2, as a usage error does.
/// Two keys with one name are refused by the server, not here: this
/// command does not see the configuration.
pub(crate) fn new_key_command(args: NewKeyArgs) -> anyhow::Result<ExitCode> {
    if !valid_key_name(&args.name) {
        eprintln!(
            "error: --name '{}' must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
            args.name
        );
        return Ok(ExitCode::from(2));
    }
    let key = new_key()?;
    let sha256 = hex::encode(Sha256::digest(key.as_bytes()));
    println!("{key}");
    println!();
    println!("# Add to the server's configuration; the key above is shown only now.");
    println!("[[auth.keys]]");
    println!("name = \"{}\"", args.name);
    println!("role = \"{}\"", args.role.as_str());
    println!("sha256 = \"{sha256}\"");
    if let Some(max) = args.max_stored_bytes {
        println!("max_stored_bytes = {max}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_url_safe() {
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 43);
        assert!(
            a[4..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
