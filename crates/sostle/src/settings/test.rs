//! `sostle test`'s settings, resolved once: conftest.toml under the flags, policy bundles
//! pulled, the config, the clock, the requester, the ledger, the user policies and the image
//! verifier — everything the run needs, as one value.

use std::sync::Arc;

use sostle_core::Config;

use crate::cli::{Format, InputParser, RegoArgs, TestArgs};
use crate::commands::policy_oci;
use crate::{check, inputs};

/// `sostle test`, resolved.
#[derive(Debug)]
pub struct TestRun {
    /// What the run needs.
    pub check: check::TestSettings,
    /// The config (the engine is built from it).
    pub config: Config,
    /// The output format.
    pub format: Format,
    /// How directories are walked.
    pub walk: inputs::WalkOptions,
    /// What is rendered besides.
    pub render: inputs::Render,
    /// The directory policy bundles were pulled into, kept as long as the run.
    pub pulled: tempfile::TempDir,
}

impl TestRun {
    /// Resolves the flags (after conftest.toml's defaults), pulling `oci://` policies.
    pub fn resolve(args: &mut TestArgs) -> anyhow::Result<TestRun> {
        super::conftest::apply_defaults(args)?;
        let pulled = pull_policies(args)?;
        let super::Settings {
            config,
            now,
            token_secret,
        } = super::Settings::resolve(&args.common)?;
        let requester = match &args.as_subject {
            Some(subject) => Some(
                sostle_core::config::Requester::from_subject(subject, args.as_group.clone())
                    .map_err(|m| anyhow::anyhow!("--as: {m}"))?,
            ),
            None => None,
        };
        let images = if args.verify_images {
            Some(Arc::new(check::ImageVerifier::new(&config.images)?))
        } else {
            None
        };
        let timeout = std::time::Duration::from_millis(args.rego_timeout_ms);
        let check = check::TestSettings {
            requester,
            combine: args.combine,
            json_only: args.parser == Some(InputParser::Json),
            images,
            layer: args.sostle_layer,
            token_secret,
            ledger: super::ledger::snapshot(&args.ledger, &config)?,
            user: user_policies(&args.rego, timeout)?.map(Arc::new),
            ..check::TestSettings::new(std::mem::take(&mut args.paths), now)
        };
        let walk = inputs::WalkOptions {
            hidden: args.hidden,
            no_ignore: args.no_ignore,
            exclude: args.exclude.clone(),
            ignore: match &args.ignore {
                Some(r) => Some(
                    regex::Regex::new(r)
                        .map_err(|e| anyhow::anyhow!("--ignore {r}: not a regex: {e}"))?,
                ),
                None => None,
            },
        };
        Ok(TestRun {
            check,
            config,
            format: args.output.unwrap_or(Format::Human),
            walk,
            render: inputs::Render {
                charts: args.render_charts,
                kustomize: args.kustomize.clone(),
            },
            pulled,
        })
    }
}

/// Pulls every `--policy oci://REF` into a directory of its own and points the flag at it.
fn pull_policies(args: &mut TestArgs) -> anyhow::Result<tempfile::TempDir> {
    let pulled = tempfile::tempdir()?;
    let mut policy = Vec::with_capacity(args.rego.policy.len());
    for (i, p) in std::mem::take(&mut args.rego.policy)
        .into_iter()
        .enumerate()
    {
        let text = p.to_string_lossy();
        if text.starts_with("oci://") {
            let dir = pulled.path().join(i.to_string());
            let got = policy_oci::fetch(&text, &dir, &args.registry, &args.policy_key)
                .map_err(|e| anyhow::anyhow!("--policy {text}: {e:#}"))?;
            // Data layers load as `-d` on the data directory that was pushed loaded them.
            args.rego.data.extend(got.data_root);
            policy.push(dir);
        } else {
            policy.push(p);
        }
    }
    args.rego.policy = policy;
    Ok(pulled)
}

/// The user policies the Rego flags name, compiled once (none without `--policy`).
pub fn user_policies(
    rego: &RegoArgs,
    timeout: std::time::Duration,
) -> anyhow::Result<Option<sostle_rego::RegoSource>> {
    if rego.policy.is_empty() {
        return Ok(None);
    }
    let policies = sostle_rego::UserPolicies::load(
        &rego.policy,
        &rego.data,
        &rego.namespace,
        rego.all_namespaces,
        timeout,
        rego.strict,
    )
    .map_err(|e| anyhow::anyhow!("--policy: {e}"))?;
    Ok(Some(sostle_rego::RegoSource::new(policies)))
}
