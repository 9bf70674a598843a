//! `sostle policy export | push | pull`: the suite as Rego on disk, and policy bundles in a registry.

use crate::cli::{self};
use crate::commands::policy_oci;
use crate::{exit, settings};

/// Writes the Rego suite, `config.rego` and `data.json` into `dir`.
pub fn write_policy_dir(
    dir: &std::path::Path,
    config: &sostle_core::Config,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, text) in sostle_rego::FILES {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        written.push(p);
    }
    let p = dir.join("config.rego");
    std::fs::write(&p, sostle_rego::config_rego(config))?;
    written.push(p);
    let p = dir.join("data.json");
    std::fs::write(
        &p,
        serde_json::to_string_pretty(&sostle_rego::data_json(config))? + "\n",
    )?;
    written.push(p);
    Ok(written)
}

pub fn run(cmd: cli::PolicyCommand) -> anyhow::Result<u8> {
    match cmd {
        cli::PolicyCommand::Export { out, config } => {
            let config = settings::config(config.as_deref())?;
            for p in write_policy_dir(&out, &config)? {
                println!("{}", p.display());
            }
            Ok(exit::OK)
        }
        cli::PolicyCommand::Push {
            dir,
            reference,
            data,
            registry,
        } => policy_oci::push(&dir, &reference, data.as_deref(), &registry),
        cli::PolicyCommand::Pull {
            reference,
            dir,
            policy_key,
            registry,
        } => policy_oci::pull(&reference, &dir, &registry, &policy_key),
    }
}
