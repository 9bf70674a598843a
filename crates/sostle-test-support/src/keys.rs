//! Test keys for signed approvals, for the case runners (sostle-rego's; sostle-core's keeps the
//! same functions in its own tests): a key derived from a crew member's name, so anyone can make
//! it — for tests only, never registered outside them.

use sostle_core::{manifest, Config};

/// The test key of a crew member: derived from the name, so anyone can make it (tests only).
pub fn test_key(name: &str) -> p256::ecdsa::SigningKey {
    use sha2::Digest;
    let seed = sha2::Sha256::digest(format!("sostle-test-key/{name}").as_bytes());
    p256::ecdsa::SigningKey::from_bytes(&seed).unwrap()
}

/// Registers every crew member's test key, except `unkeyed`.
pub fn register_test_keys(config: &mut Config, unkeyed: &[String]) {
    for c in &mut config.crew {
        if !unkeyed.contains(&c.name) {
            c.keys.push(sostle_core::approval::CrewKey::new(
                *test_key(&c.name).verifying_key(),
            ));
        }
    }
}

/// Replaces `{{approval}}` (the reviewer's test key) and `{{approval:NAME}}` by a signature
/// over the input's witness.
pub fn substitute_approval(input: &str, config: &Config) -> String {
    if !input.contains("{{approval") {
        return input.to_string();
    }
    let l = manifest::load(&input.replace("{{approval", "x{{"));
    let Some(a) = l
        .documents
        .first()
        .and_then(|d| sostle_core::exemption::Annotations::read(&d.root))
    else {
        return input.to_string();
    };
    let witness = a.witness.clone().unwrap_or_default();
    let reviewer = a.reviewed.clone().unwrap_or_default();
    let reviewer = config
        .crew_member(&reviewer)
        .map(|m| m.name.clone())
        .unwrap_or(reviewer);
    let mut out = input.replace(
        "{{approval}}",
        &sostle_core::approval::sign(&test_key(&reviewer), &witness),
    );
    while let Some(start) = out.find("{{approval:") {
        let end = start + out[start..].find("}}").unwrap();
        let name = out[start + 11..end].to_string();
        out.replace_range(
            start..end + 2,
            &sostle_core::approval::sign(&test_key(&name), &witness),
        );
    }
    out
}
