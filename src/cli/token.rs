//! `notarium token create | list | revoke`: API tokens, straight in the configured database, so the first
//! token can be made before any server runs. A new token is printed once; only its hash is stored.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};

use super::{CliError, Output};
use crate::auth::token::{TokenSpec, parse_lifetime};
use crate::auth::{AuthError, Role};
use crate::config::Config;
use crate::store::{Append, RegisterStore, Store, TokenRecord};
use std::sync::Arc;

#[derive(Subcommand)]
pub(super) enum TokenCommand {
    /// Make a token and print it (once).
    Create {
        #[arg(long, value_enum)]
        role: Role,
        /// Repository globs a signer may sign in, e.g. 'registry.example/team-a/*' (repeatable or comma-separated).
        #[arg(long, value_delimiter = ',')]
        repos: Vec<String>,
        /// Key ids a signer may use; `*` for any (repeatable or comma-separated).
        #[arg(long, value_delimiter = ',')]
        keys: Vec<String>,
        /// Lifetime: 90d, 12h, 30m; never expires when omitted.
        #[arg(long)]
        expires: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Accept key ids the configuration does not define (a warning instead of an error).
        #[arg(long)]
        force: bool,
    },
    /// Every token: id, role, scope, expiry, revocation (never the token).
    List,
    /// Revoke token ID: it is refused from the next request on.
    Revoke { id: String },
}

pub(super) async fn run(command: TokenCommand, config: Option<PathBuf>, output: Output) -> Result<(), CliError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::load(config.as_deref(), &env).map_err(|e| CliError::Usage(e.to_string()))?;
    let store = crate::store::open(&config.database_url()).await.map_err(|e| CliError::Unavailable(e.to_string()))?;
    match command {
        TokenCommand::Create { role, repos, keys, expires, description, force } => {
            check_keys_configured(&config, &keys, force)?;
            let expires_in = expires.as_deref().map(parse_lifetime).transpose().map_err(CliError::Usage)?;
            let spec = TokenSpec { role, repos, keys, description, expires_in };
            create(&store, &spec, output).await
        }
        TokenCommand::List => list(store.as_ref(), output).await,
        TokenCommand::Revoke { id } => revoke(&store, &id, output).await,
    }
}

async fn create(store: &Arc<dyn Store>, spec: &TokenSpec, output: Output) -> Result<(), CliError> {
    let (token, record) = crate::auth::token::create(store.as_ref(), spec).await.map_err(|e| match e {
        AuthError::InvalidSpec(reason) | AuthError::InvalidLifetime(reason) => CliError::Usage(reason),
        other => CliError::Unavailable(other.to_string()),
    })?;
    record_change(store, "token-created", &describe(&record)).await?;
    match output {
        Output::Json => println!("{}", json!({"token": token.reveal(), "record": describe(&record)})),
        Output::Text => {
            println!("{}", token.reveal());
            eprintln!(
                "token {} ({}) made; this is the only time it is shown. Clients send it as `Authorization: Bearer …` \
                 (notarium sign reads NOTARIUM_TOKEN).",
                record.id, record.role
            );
        }
    }
    Ok(())
}

async fn list(store: &dyn Store, output: Output) -> Result<(), CliError> {
    let tokens = store.tokens().await.map_err(|e| CliError::Unavailable(e.to_string()))?;
    match output {
        Output::Json => println!("{}", json!({"tokens": tokens.iter().map(describe).collect::<Vec<_>>()})),
        Output::Text => {
            for t in &tokens {
                let state = match (&t.revoked_at, &t.expires_at) {
                    (Some(at), _) => format!("revoked {at}"),
                    (None, Some(at)) => format!("expires {at}"),
                    (None, None) => "no expiry".into(),
                };
                println!("{}\t{}\trepos={}\tkeys={}\t{state}", t.id, t.role, t.repos.join(","), t.keys.join(","));
            }
        }
    }
    Ok(())
}

async fn revoke(store: &Arc<dyn Store>, id: &str, output: Output) -> Result<(), CliError> {
    let revoked =
        crate::auth::token::revoke(store.as_ref(), id).await.map_err(|e| CliError::Unavailable(e.to_string()))?;
    let Some(now) = revoked else {
        return Err(CliError::Refused(format!("no token {id} in force")));
    };
    record_change(store, "token-revoked", &json!({"id": id})).await?;
    match output {
        Output::Json => println!("{}", json!({"revoked": id, "at": now})),
        Output::Text => println!("revoked {id}"),
    }
    Ok(())
}

/// A token for keys the configuration does not define signs with nothing: most likely a typo.
fn check_keys_configured(config: &Config, keys: &[String], force: bool) -> Result<(), CliError> {
    let unknown: Vec<&str> =
        keys.iter().map(String::as_str).filter(|k| *k != "*" && !config.keys.iter().any(|c| c.id() == *k)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let configured: Vec<&str> = config.keys.iter().map(|k| k.id()).collect();
    let message =
        format!("--keys {} not configured (the configuration's keys: {})", unknown.join(", "), configured.join(", "));
    if force {
        eprintln!("notarium: warning: {message}; making the token anyway (--force)");
        return Ok(());
    }
    Err(CliError::Usage(format!("{message}; pass --config FILE for another configuration, or --force")))
}

/// The register entry for a change made from the command line (the actor is the operating-system user).
async fn record_change(store: &Arc<dyn Store>, kind: &str, token: &Value) -> Result<(), CliError> {
    let user = operating_system_user();
    let time = crate::auth::token::now_rfc3339();
    let entry = crate::register::event::token_entry(kind, &time, &format!("cli:{user}"), token);
    let log = crate::register::Register::new(store.clone() as Arc<dyn RegisterStore>);
    log.append(Append::plain(entry)).await.map_err(|e| CliError::Unavailable(e.to_string()))?;
    Ok(())
}

/// `$USER`, else the user name of this process's uid in /etc/passwd, else `uid:N`.
fn operating_system_user() -> String {
    if let Some(user) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return user;
    }
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".into();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    user_of(&passwd, uid).unwrap_or_else(|| format!("uid:{uid}"))
}

/// The name of `uid` in an /etc/passwd text (`name:password:uid:...`).
fn user_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        (fields.nth(1)?.parse::<u32>().ok()? == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

fn describe(t: &TokenRecord) -> Value {
    serde_json::to_value(crate::auth::token::describe(t)).expect("a token view serializes")
}

#[cfg(test)]
mod tests {
    use super::user_of;

    #[test]
    fn the_user_name_is_the_passwd_line_of_the_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nci:x:1001:1001::/home/ci:/bin/sh\n";
        assert_eq!(user_of(passwd, 1001).as_deref(), Some("ci"));
        assert_eq!(user_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_of(passwd, 42), None);
    }
}
