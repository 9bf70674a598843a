//! `sostle token issue | verify`: SOSTLE tokens for the token-gated layer.

use sostle_core::token;

use sostle_core::Layer;

use crate::cli::{Common, TokenCommand};
use crate::{exit, settings};

/// Runs `sostle token issue | verify`.
pub fn run(t: TokenCommand) -> anyhow::Result<u8> {
    match t {
        TokenCommand::Issue {
            crew,
            layer,
            expires,
            common,
        } => issue(&common, &crew, layer, &expires),
        TokenCommand::Verify {
            token: tok,
            crew,
            layer,
            common,
        } => verify(&common, &crew, layer, &tok),
    }
}

/// `sostle token issue`: a token for `crew` at `layer` until `expires`.
fn issue(common: &Common, crew: &str, layer: Layer, expires: &str) -> anyhow::Result<u8> {
    let (s, member) = resolve(common, crew)?;
    let expires = sostle_core::epoch::parse_rfc3339(expires)
        .map_err(|m| anyhow::anyhow!("--expires: {m}"))?;
    if expires <= s.now {
        anyhow::bail!("--expires: {expires} is not in the future");
    }
    let secret = secret(s.token_secret)?;
    println!(
        "{}",
        token::issue(&secret, &member, layer, expires.as_second())
    );
    Ok(exit::OK)
}

/// `sostle token verify`: whether `tok` holds for `crew` at `layer` now.
fn verify(common: &Common, crew: &str, layer: Layer, tok: &str) -> anyhow::Result<u8> {
    let (s, member) = resolve(common, crew)?;
    let secret = secret(s.token_secret)?;
    let names = s.config.crew.iter().map(|c| c.name.as_str());
    match token::verify(&secret, tok, &member, layer, s.now.as_second(), names) {
        Ok(()) => {
            println!("valid: {member} at {layer}");
            Ok(exit::OK)
        }
        Err(e) => {
            println!("refused: {e}");
            Ok(exit::FAIL)
        }
    }
}

/// The settings, and the registered crew member `crew` names.
fn resolve(common: &Common, crew: &str) -> anyhow::Result<(settings::Settings, String)> {
    let s = settings::Settings::resolve(common)?;
    let m = member(&s.config, crew)?;
    Ok((s, m))
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
