//! `sostle token issue | verify`: SOSTLE tokens for the token-gated layer.

use sostle_core::token;

use crate::cli::TokenCommand;
use crate::{exit, settings};

/// Runs `sostle token issue | verify`.
pub fn run(t: TokenCommand) -> anyhow::Result<u8> {
    match t {
        TokenCommand::Issue {
            crew,
            layer,
            expires,
            common,
        } => {
            let settings::Settings {
                config,
                now,
                token_secret,
            } = settings::Settings::resolve(&common)?;
            let member = member(&config, &crew)?;
            let expires = sostle_core::epoch::parse_rfc3339(&expires)
                .map_err(|m| anyhow::anyhow!("--expires: {m}"))?;
            if expires <= now {
                anyhow::bail!("--expires: {expires} is not in the future");
            }
            let secret = secret(token_secret)?;
            let tok = token::issue(&secret, &member, layer, expires.as_second());
            println!("{tok}");
            Ok(exit::OK)
        }
        TokenCommand::Verify {
            token: tok,
            crew,
            layer,
            common,
        } => {
            let settings::Settings {
                config,
                now,
                token_secret,
            } = settings::Settings::resolve(&common)?;
            let member = member(&config, &crew)?;
            let secret = secret(token_secret)?;
            let names = config.crew.iter().map(|c| c.name.as_str());
            match token::verify(&secret, &tok, &member, layer, now.as_second(), names) {
                Ok(()) => {
                    println!("valid: {} at {layer}", member);
                    Ok(exit::OK)
                }
                Err(e) => {
                    println!("refused: {e}");
                    Ok(exit::FAIL)
                }
            }
        }
    }
}

/// The registered crew member `crew` names.
fn member(config: &sostle_core::Config, crew: &str) -> anyhow::Result<String> {
    config
        .crew_member(crew)
        .map(|m| m.name.clone())
        .ok_or_else(|| anyhow::anyhow!("--crew: `{crew}` is not registered crew"))
}

/// The token secret, which both subcommands need.
fn secret(token_secret: Option<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    token_secret.ok_or_else(|| {
        anyhow::anyhow!("no token secret: set SOSTLE_TOKEN_SECRET or tokens.secret in the config")
    })
}
