//! `sostle bootstrap`: the cluster side as files — the nine layer namespaces, the spot chaos
//! pool (az script and Terraform), and the webhook (Deployment, Service, PDB, certificate,
//! validating and mutating configurations), built by `sostle-bootstrap` and printed as YAML.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::Value as J;
use sostle_bootstrap::{az_script, namespaces, terraform, webhook, Endpoint, README};

use crate::cli::{BootstrapArgs, BootstrapPart};

fn write_yaml(path: &Path, docs: &[J]) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    Ok(crate::output::print_yaml(docs, &mut f)?)
}

pub fn run(args: BootstrapArgs) -> anyhow::Result<u8> {
    let config = crate::settings::config(args.config.as_deref())?;
    let cluster = args
        .cluster
        .clone()
        .or_else(|| config.cluster.name.clone())
        .unwrap_or_else(|| "my-aks-cluster".into());
    let group = args
        .resource_group
        .clone()
        .or_else(|| config.cluster.resource_group.clone())
        .unwrap_or_else(|| "my-resource-group".into());
    let config_yaml = match &args.config {
        Some(p) => sostle_bootstrap::config_for_cluster(p)?,
        None => "apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\n".to_string(),
    };
    let ns = namespaces(&config);
    let image = sostle_bootstrap::webhook_image(&args.image, args.image_digest.as_deref())?;
    let endpoint = match (&args.webhook_url, &args.webhook_ca) {
        (Some(url), Some(ca)) => {
            if !url.starts_with("https://") {
                anyhow::bail!("--webhook-url {url}: the API server calls webhooks over https");
            }
            let pem =
                std::fs::read(ca).with_context(|| format!("--webhook-ca {}", ca.display()))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                anyhow::bail!("--webhook-ca {}: not a PEM certificate", ca.display());
            }
            use base64::Engine as _;
            Some(Endpoint {
                url: url.clone(),
                ca_bundle: base64::engine::general_purpose::STANDARD.encode(pem),
            })
        }
        _ => None,
    };
    let wh = webhook(
        &config,
        &config_yaml,
        &image,
        config.images.enabled() || config.locks.from_registry(),
        endpoint.as_ref(),
    );
    if let Some(part) = args.print {
        let mut out = std::io::stdout().lock();
        match part {
            BootstrapPart::Namespaces => crate::output::print_yaml(&ns, &mut out)?,
            BootstrapPart::Az => write!(out, "{}", az_script(&config, &cluster, &group))?,
            BootstrapPart::Terraform => write!(out, "{}", terraform(&config, &cluster, &group))?,
            BootstrapPart::Webhook => crate::output::print_yaml(&wh, &mut out)?,
            BootstrapPart::Rego => write!(out, "{}", sostle_rego::single_module(&config))?,
        }
        return Ok(crate::exit::OK);
    }
    let Some(dir) = args.out else {
        anyhow::bail!("give --out DIR (or --print PART)");
    };
    std::fs::create_dir_all(dir.join("chaos-pool"))
        .with_context(|| format!("{}", dir.display()))?;
    write_yaml(&dir.join("namespaces.yaml"), &ns)?;
    write_yaml(&dir.join("webhook.yaml"), &wh)?;
    std::fs::write(
        dir.join("chaos-pool/az.sh"),
        az_script(&config, &cluster, &group),
    )?;
    std::fs::write(
        dir.join("chaos-pool/main.tf"),
        terraform(&config, &cluster, &group),
    )?;
    std::fs::write(dir.join("README.md"), README)?;
    crate::commands::policy::write_policy_dir(&dir.join("policy"), &config)?;
    for f in [
        "README.md",
        "namespaces.yaml",
        "webhook.yaml",
        "chaos-pool/az.sh",
        "chaos-pool/main.tf",
        "policy/",
    ] {
        println!("{}", dir.join(f).display());
    }
    Ok(crate::exit::OK)
}
