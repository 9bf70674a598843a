//! Settings, resolved once per command (ripgrep's low and high args, uv's settings): the flags
//! and the environment become one plain struct the command reads — the config, the clock, the
//! token secret — so no command re-reads any of them on its own, and a test can build one.

use std::io::IsTerminal;
use std::path::Path;

use jiff::Timestamp;
use sostle_core::Config;

use crate::cli::Common;

pub mod conftest;
pub mod ledger;
pub mod test;

/// What every command that evaluates, files or checks needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The SostleConfig (`--config` / `SOSTLE_CONFIG`, else the built-in default).
    pub config: Config,
    /// The instant to evaluate at (`--now` / `SOSTLE_NOW`, else the system clock).
    pub now: Timestamp,
    /// The SOSTLE token secret: `SOSTLE_TOKEN_SECRET`, else the config's `tokens.secret`.
    pub token_secret: Option<Vec<u8>>,
}

impl Settings {
    /// Resolves the common flags: the config first (its errors name the file and line), then
    /// the clock.
    pub fn resolve(common: &Common) -> anyhow::Result<Settings> {
        let config = config(common.config.as_deref())?;
        let now = now(common.now.as_deref())?;
        Ok(Settings {
            token_secret: token_secret(&config)?,
            config,
            now,
        })
    }
}

/// The config at `path`, or the built-in default.
pub fn config(path: Option<&Path>) -> anyhow::Result<Config> {
    load_config(path).map_err(anyhow::Error::msg)
}

/// Loads the config file, or the built-in default.
fn load_config(path: Option<&Path>) -> Result<Config, String> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read config: {e}", path.display()))?;
    Config::from_yaml_with(&text, &sostle_webhook::key_file_reader(path)).map_err(|e| {
        if e.line > 0 {
            format!(
                "{}:{}:{}: invalid config: {e}",
                path.display(),
                e.line,
                e.col
            )
        } else {
            format!("{}: invalid config: {e}", path.display())
        }
    })
}

/// The instant `--now` names, else the system clock.
pub fn now(flag: Option<&str>) -> anyhow::Result<Timestamp> {
    match flag {
        Some(s) => sostle_core::epoch::parse_rfc3339(s).map_err(|m| anyhow::anyhow!("--now: {m}")),
        None => Ok(Timestamp::now()),
    }
}

/// The token secret from `SOSTLE_TOKEN_SECRET`, if set and not empty.
/// A secret shorter than the config's minimum (16 characters, as `tokens.secret`) is refused:
/// tokens made with a guessable secret can be forged.
pub fn env_token_secret() -> anyhow::Result<Option<Vec<u8>>> {
    let Some(s) = std::env::var("SOSTLE_TOKEN_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    if s.len() < sostle_core::token::MIN_SECRET_LEN {
        anyhow::bail!(
            "SOSTLE_TOKEN_SECRET has {} characters; a token secret needs at least {} (as tokens.secret in the config)",
            s.len(),
            sostle_core::token::MIN_SECRET_LEN
        );
    }
    Ok(Some(s.into_bytes()))
}

/// The token secret: the environment's, else the config's.
pub fn token_secret(config: &Config) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(env_token_secret()?.or_else(|| config.token_secret.clone().map(String::into_bytes)))
}

/// Whether stdout gets colour: a terminal, `NO_COLOR` unset (or empty), no `--no-color`.
pub fn color(no_color_flag: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color_flag && !no_color && std::io::stdout().is_terminal()
}
