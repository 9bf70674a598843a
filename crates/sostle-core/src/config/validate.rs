//! The config as written ([`super::raw`]) checked section by section into a [`Config`]: one
//! function per top-level key, run in the order of the file's documentation, each returning the
//! first problem with the key path it concerns (the caller turns it into a positioned
//! [`super::ConfigError`]).

use std::collections::BTreeMap;
use std::fmt::Display;

use super::raw::{
    RawChaosPool, RawConfig, RawCrew, RawExemptRule, RawExemptions, RawGate, RawImages, RawLayer,
    RawLedger, RawLocks, RawPolicy, RawRegistries, RawRekor, RawSigner, RawSuite, RawTokens,
    RawUserExempt, RawUserScope,
};
use super::{
    ChaosPool, Cluster, Config, CrewMember, KeyReader, MegGate, RekorSpec, Subject, ROLES,
};
use crate::approval::CrewKey;
use crate::epoch;
use crate::layer::{Layer, LayerSet};
use crate::suite::{self, Escalation, ExemptCondition, ExemptRule, PolicySpec};

/// A problem found while validating: the key path and what is wrong.
#[derive(Debug)]
pub(super) struct Invalid {
    /// The key path, such as `crew[0].roles[1]`.
    pub(super) path: String,
    /// What is wrong and what to write instead.
    pub(super) message: String,
}

/// A problem at `path`.
fn invalid(path: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// Turns an error into a problem at `path`, its text the message.
fn at<E: Display>(path: impl Into<String>) -> impl FnOnce(E) -> Invalid {
    move |e| invalid(path, e.to_string())
}

fn parse_layer(path: String, s: &str) -> Result<Layer, Invalid> {
    Layer::parse(s)
        .ok_or_else(|| invalid(path, format!("`{s}` is not a layer; write L0…L7 or trial")))
}

fn parse_layers(path: String, items: &[String]) -> Result<LayerSet, Invalid> {
    LayerSet::parse_items(items.iter().map(String::as_str)).map_err(at(path))
}

fn known_role(path: String, role: &str) -> Result<(), Invalid> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(invalid(path, format!("unknown role `{role}`")))
    }
}

/// A PEM given inline, or the text of the file it names (read by the caller's reader).
fn pem_or_file(value: &str, path: &str, read: &KeyReader<'_>) -> Result<String, Invalid> {
    if value.trim_start().starts_with("-----BEGIN") {
        Ok(value.to_string())
    } else {
        read(value.trim()).map_err(at(path))
    }
}

/// A PEM public key given inline or by file, checked to parse.
fn public_key_pem(value: &str, path: &str, read: &KeyReader<'_>) -> Result<String, Invalid> {
    let pem = pem_or_file(value, path, read)?;
    CrewKey::from_pem(&pem).map_err(at(path))?;
    Ok(pem)
}

/// A PEM certificate given inline or by file.
fn certificate_pem(value: &str, path: String, read: &KeyReader<'_>) -> Result<String, Invalid> {
    let pem = pem_or_file(value, &path, read)?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(invalid(path, "not a PEM certificate"));
    }
    Ok(pem)
}

impl RawConfig {
    /// The config these sections describe, over the built-in defaults; the first problem,
    /// in the order of the sections below.
    pub(super) fn validate(self, read_key: &KeyReader<'_>) -> Result<Config, Invalid> {
        let mut cfg = Config::default();
        header(&self.api_version, &self.kind)?;
        if let Some(e) = self.epoch {
            cfg.origin = epoch::parse_rfc3339(&e.origin).map_err(at("epoch.origin"))?;
        }
        namespaces(&mut cfg, self.default_layer, self.namespaces)?;
        for (i, c) in self.crew.into_iter().enumerate() {
            crew_member(&mut cfg.crew, i, c, read_key)?;
        }
        if let Some(s) = self.suite {
            suite_section(&mut cfg, s)?;
        }
        layers(&mut cfg, self.layers)?;
        for (name, g) in self.gates {
            gate(&mut cfg, &name, g)?;
        }
        if let Some(t) = self.tokens {
            cfg.token_secret = tokens(t)?;
        }
        if let Some(e) = self.exemptions {
            exemptions(&mut cfg, e)?;
        }
        if let Some(c) = self.chaos_pool {
            chaos_pool(&mut cfg.chaos_pool, c)?;
        }
        if let Some(c) = self.cluster {
            cfg.cluster = Cluster {
                name: c.name,
                resource_group: c.resource_group,
            };
        }
        if let Some(i) = self.images {
            cfg.images = images(i, read_key)?;
        }
        if let Some(l) = self.ledger {
            cfg.ledger_url = Some(ledger(l)?);
        }
        if let Some(r) = self.rekor {
            cfg.rekor = rekor(r, read_key)?;
        }
        if let Some(l) = self.locks {
            locks(&mut cfg.locks, l, read_key)?;
        }
        Ok(cfg)
    }
}

/// `apiVersion` and `kind`.
fn header(api_version: &str, kind: &str) -> Result<(), Invalid> {
    if api_version != "sostle.eose.ca/v1" {
        return Err(invalid(
            "apiVersion",
            format!("`{api_version}` is not supported; write sostle.eose.ca/v1"),
        ));
    }
    if kind != "SostleConfig" {
        return Err(invalid("kind", format!("`{kind}` is not SostleConfig")));
    }
    Ok(())
}

/// `defaultLayer` and `namespaces`.
fn namespaces(
    cfg: &mut Config,
    default_layer: Option<String>,
    namespaces: BTreeMap<String, String>,
) -> Result<(), Invalid> {
    if let Some(l) = default_layer {
        cfg.default_layer = Some(parse_layer("defaultLayer".into(), &l)?);
    }
    for (ns, l) in namespaces {
        let layer = parse_layer(format!("namespaces.{ns}"), &l)?;
        cfg.namespaces.insert(ns, layer);
    }
    Ok(())
}

/// `crew[i]`: added to the registry, or replacing the member of the same name.
fn crew_member(
    crew: &mut Vec<CrewMember>,
    i: usize,
    c: RawCrew,
    read_key: &KeyReader<'_>,
) -> Result<(), Invalid> {
    let path = format!("crew[{i}]");
    if c.name.trim().is_empty() {
        return Err(invalid(
            format!("{path}.name"),
            "a crew member needs a name",
        ));
    }
    for (j, r) in c.roles.iter().enumerate() {
        if !ROLES.contains(&r.as_str()) {
            return Err(invalid(
                format!("{path}.roles[{j}]"),
                format!("unknown role `{r}`; roles are {}", ROLES.join(", ")),
            ));
        }
    }
    let mut keys = Vec::new();
    for (j, k) in c.keys.iter().enumerate() {
        keys.push(crew_key(k, &format!("{path}.keys[{j}]"), read_key)?);
    }
    let mut subjects = Vec::new();
    for (j, t) in c.subjects.iter().enumerate() {
        subjects.push(Subject::parse(t).map_err(at(format!("{path}.subjects[{j}]")))?);
    }
    let member = CrewMember {
        name: c.name,
        identity: c.identity.filter(|s| !s.is_empty()),
        roles: c.roles,
        keys,
        subjects,
    };
    if let Some(id) = &member.identity {
        if crew
            .iter()
            .any(|m| m.identity.as_ref() == Some(id) && m.name != member.name)
        {
            return Err(invalid(
                format!("{path}.identity"),
                format!("identity `{id}` already belongs to another crew member"),
            ));
        }
    }
    match crew.iter_mut().find(|m| m.name == member.name) {
        Some(existing) => *existing = member,
        None => crew.push(member),
    }
    Ok(())
}

/// `crew[i].keys[j]`: a PEM inline or a key file; a file's problem names the file.
fn crew_key(k: &str, kpath: &str, read_key: &KeyReader<'_>) -> Result<CrewKey, Invalid> {
    let pem = pem_or_file(k, kpath, read_key)?;
    CrewKey::from_pem(&pem).map_err(|e| {
        let what = if pem.trim_start().starts_with("-----BEGIN") {
            String::new()
        } else {
            format!("{}: ", k.trim())
        };
        invalid(kpath, format!("{what}{e}"))
    })
}

/// `suite`: user policy scopes, the user policy matrix, then the suite's own policies.
fn suite_section(cfg: &mut Config, s: RawSuite) -> Result<(), Invalid> {
    for (k, r) in s.user_policy_scope.into_iter().enumerate() {
        cfg.user_scope.push(user_scope(k, r)?);
    }
    if let Some(rows) = s.user_policy_exemptable {
        let mut out = Vec::new();
        for (k, r) in rows.into_iter().enumerate() {
            out.push(user_exempt(k, r)?);
        }
        cfg.user_exempt = out;
    }
    for (id, rp) in s.policies {
        policy(&mut cfg.policies, &id, rp)?;
    }
    Ok(())
}

/// `suite.userPolicyScope[k]`.
fn user_scope(k: usize, r: RawUserScope) -> Result<suite::UserScopeRule, Invalid> {
    let path = format!("suite.userPolicyScope[{k}]");
    let layers = parse_layers(format!("{path}.layers"), &r.layers)?;
    if r.rules.is_empty() {
        return Err(invalid(
            format!("{path}.rules"),
            "give at least one rule id (rego:main/deny_*)",
        ));
    }
    if let Some(bad) = r.rules.iter().find(|p| !p.starts_with("rego:")) {
        return Err(invalid(
            format!("{path}.rules"),
            format!("`{bad}` is not a user rule id (rego:<namespace>/<rule>); the suite's own policies are scoped by suite.policies.<id>.layers"),
        ));
    }
    Ok(suite::UserScopeRule {
        rules: r.rules,
        layers,
    })
}

/// `suite.userPolicyExemptable[k]`: a row of SPEC §6's matrix for user policies.
fn user_exempt(k: usize, r: RawUserExempt) -> Result<suite::UserExemptRule, Invalid> {
    let path = format!("suite.userPolicyExemptable[{k}]");
    let layers = parse_layers(format!("{path}.layers"), &r.layers)?;
    if layers.contains(Layer::L6) || layers.contains(Layer::L7) {
        return Err(invalid(
            format!("{path}.layers"),
            "L6 and L7 exempt nothing",
        ));
    }
    if r.patterns.is_empty() {
        return Err(invalid(
            format!("{path}.patterns"),
            "give at least one rule-name pattern (warn_*, deny_*, *)",
        ));
    }
    // SPEC §6: deny_* at L3 "except deny_privileged"; only L5's "any, Kay only" row may cover a
    // rule of that name.
    let covers_privileged = r
        .patterns
        .iter()
        .any(|p| suite::pattern_matches(p, "deny_privileged"))
        && !r.except.iter().any(|e| e == "deny_privileged");
    if covers_privileged && layers != LayerSet::NONE.with(Layer::L5) {
        return Err(invalid(
            format!("{path}.except"),
            "deny_privileged can never be exempted here: add it to except",
        ));
    }
    let condition = match r.reviewed_by {
        Some(role) => {
            known_role(format!("{path}.reviewedBy"), &role)?;
            Some(ExemptCondition::ReviewedBy(role))
        }
        None => None,
    };
    Ok(suite::UserExemptRule {
        layers,
        patterns: r.patterns,
        except: r.except,
        condition,
    })
}

/// `suite.policies.<id>`: overrides of a row of the suite table.
fn policy(policies: &mut [PolicySpec], id: &str, rp: RawPolicy) -> Result<(), Invalid> {
    let base = format!("suite.policies.{id}");
    let Some(p) = policies.iter_mut().find(|p| p.id == id) else {
        let names: Vec<String> = suite::default_policies()
            .into_iter()
            .map(|p| p.id)
            .collect();
        return Err(invalid(
            base,
            format!("unknown policy `{id}`; the suite has {}", names.join(", ")),
        ));
    };
    if let Some(layers) = rp.layers {
        p.layers = parse_layers(format!("{base}.layers"), &layers)?;
    }
    if let Some(v) = rp.verdict {
        p.verdict = v;
    }
    if let Some(e) = rp.escalation {
        p.escalation = e.map(|e| Escalation {
            from_day: e.day,
            verdict: e.verdict,
        });
    }
    if let Some(en) = rp.enabled {
        p.enabled = en;
    }
    if let Some(f) = rp.floor {
        if !(0.0..=1.0).contains(&f) {
            return Err(invalid(
                format!("{base}.floor"),
                format!("{f} is outside [0, 1]"),
            ));
        }
        p.floor = f;
    }
    if let Some(rules) = rp.exemptable {
        let mut out = Vec::new();
        for (k, r) in rules.into_iter().enumerate() {
            out.push(exempt_rule(&p.id, &format!("{base}.exemptable[{k}]"), r)?);
        }
        p.exempt = out;
    }
    Ok(())
}

/// `suite.policies.<id>.exemptable[k]`: where, and on what condition, the policy is exempted.
fn exempt_rule(id: &str, rpath: &str, r: RawExemptRule) -> Result<ExemptRule, Invalid> {
    let layers = parse_layers(format!("{rpath}.layers"), &r.layers)?;
    if id == "deny_privileged" && layers != LayerSet::NONE {
        return Err(invalid(rpath, "deny_privileged can never be exempted"));
    }
    if layers.contains(Layer::L6) || layers.contains(Layer::L7) {
        return Err(invalid(
            format!("{rpath}.layers"),
            "L6 and L7 exempt nothing",
        ));
    }
    let condition = match (r.requires_open_trial, r.reviewed_by) {
        (true, None) => Some(ExemptCondition::TrialOpen),
        (false, Some(role)) => {
            known_role(format!("{rpath}.reviewedBy"), &role)?;
            Some(ExemptCondition::ReviewedBy(role))
        }
        (false, None) => None,
        (true, Some(_)) => {
            return Err(invalid(
                rpath,
                "give requiresOpenTrial or reviewedBy, not both",
            ))
        }
    };
    Ok(ExemptRule { layers, condition })
}

/// `layers`: `writers`, and per layer its namespace and approvers.
fn layers(cfg: &mut Config, raw: BTreeMap<String, serde_json::Value>) -> Result<(), Invalid> {
    for (name, value) in raw {
        if name == "writers" {
            cfg.layer_writers = serde_json::from_value(value).map_err(|_| {
                invalid(
                    "layers.writers",
                    "writers is a list of user names (or group:NAME)",
                )
            })?;
            continue;
        }
        let layer = parse_layer(format!("layers.{name}"), &name)?;
        let rl: RawLayer = serde_path_to_error::deserialize(value).map_err(|e| {
            let sub = e.path().to_string();
            let path = if sub == "." {
                format!("layers.{name}")
            } else {
                format!("layers.{name}.{sub}")
            };
            invalid(path, e.inner().to_string())
        })?;
        let Some(spec) = cfg.layers.iter_mut().find(|l| l.layer == layer) else {
            continue;
        };
        if let Some(ns) = rl.namespace {
            spec.namespace = ns;
        }
        if let Some(a) = rl.approvers {
            approvers(&name, layer, &a)?;
            spec.approvers = a;
        }
    }
    Ok(())
}

/// `layers.<name>.approvers`: roles (or `self`); L6 has none.
fn approvers(name: &str, layer: Layer, a: &[String]) -> Result<(), Invalid> {
    for (j, r) in a.iter().enumerate() {
        if r != "self" && !ROLES.contains(&r.as_str()) {
            return Err(invalid(
                format!("layers.{name}.approvers[{j}]"),
                format!("unknown role `{r}`"),
            ));
        }
    }
    if matches!(layer, Layer::L6) && !a.is_empty() {
        return Err(invalid(
            format!("layers.{name}.approvers"),
            "L6 is closed: it has no approvers",
        ));
    }
    Ok(())
}

/// `gates.gate-N`: a MEGSCIFIAR gate, opened by registered crew.
fn gate(cfg: &mut Config, name: &str, g: RawGate) -> Result<(), Invalid> {
    let path = format!("gates.{name}");
    let n: usize = name
        .strip_prefix("gate-")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=5).contains(n))
        .ok_or_else(|| invalid(path.clone(), "gates are gate-1 … gate-5"))?;
    let opened_at = match g.opened_at {
        Some(t) => Some(epoch::parse_rfc3339(&t).map_err(at(format!("{path}.openedAt")))?),
        None => None,
    };
    if g.open && g.opened_by.is_none() {
        return Err(invalid(
            format!("{path}.openedBy"),
            "an open gate must say who opened it",
        ));
    }
    if let Some(who) = &g.opened_by {
        if !cfg
            .crew
            .iter()
            .any(|c| &c.name == who || c.identity.as_ref() == Some(who))
        {
            return Err(invalid(
                format!("{path}.openedBy"),
                format!("`{who}` is not registered crew"),
            ));
        }
    }
    if let Some(slot) = cfg.gates.get_mut(n - 1) {
        *slot = MegGate {
            open: g.open,
            opened_by: g.opened_by,
            opened_at,
        };
    }
    Ok(())
}

/// `tokens`: the token secret, if long enough.
fn tokens(t: RawTokens) -> Result<Option<String>, Invalid> {
    if let Some(s) = &t.secret {
        if s.len() < crate::token::MIN_SECRET_LEN {
            return Err(invalid(
                "tokens.secret",
                format!(
                    "the token secret needs at least {} characters",
                    crate::token::MIN_SECRET_LEN
                ),
            ));
        }
    }
    Ok(t.secret)
}

/// `exemptions`: the longest waiver, who writes annotations, whether approvals are signed.
fn exemptions(cfg: &mut Config, e: RawExemptions) -> Result<(), Invalid> {
    if let Some(d) = e.max_days {
        if d == 0 || d > 365 {
            return Err(invalid(
                "exemptions.maxDays",
                "maxDays must be between 1 and 365: no permanent waivers",
            ));
        }
        cfg.exemption_max_days = d;
    }
    cfg.exemption_writers = e.writers;
    if let Some(r) = e.require_approval {
        cfg.require_approval = r;
    }
    Ok(())
}

/// `chaosPool`: over the defaults, its counts in order.
fn chaos_pool(pool: &mut ChaosPool, c: RawChaosPool) -> Result<(), Invalid> {
    if let Some(n) = c.name {
        pool.name = n;
    }
    if let Some(v) = c.vm_size {
        pool.vm_size = v;
    }
    if let Some(v) = c.min_count {
        pool.min_count = v;
    }
    if let Some(v) = c.max_count {
        pool.max_count = v;
    }
    if pool.min_count > pool.max_count {
        return Err(invalid("chaosPool.minCount", "minCount is above maxCount"));
    }
    Ok(())
}

/// `images`: signers, the Rekor keys, what each layer requires, registries, the cache.
fn images(raw: RawImages, read: &KeyReader<'_>) -> Result<super::ImagePolicy, Invalid> {
    use super::{CacheSpec, ImagePolicy};
    let mut out = ImagePolicy::default();
    for (i, s) in raw.signers.into_iter().enumerate() {
        let signer = signer(&out.signers, &format!("images.signers[{i}]"), s, read)?;
        out.signers.push(signer);
    }
    for (i, k) in raw.rekor_keys.iter().enumerate() {
        let pem = public_key_pem(k, &format!("images.rekorKeys[{i}]"), read)?;
        out.rekor_keys.push(pem);
    }
    out.require = match raw.require {
        None => ImagePolicy::default_require(&out.signers),
        Some(map) => image_requirements(&out.signers, map)?,
    };
    if let Some(r) = raw.registries {
        out.registries = registries(r, read)?;
    }
    let mut cache = CacheSpec::default();
    if let Some(c) = raw.cache {
        if let Some(t) = c.ttl_seconds {
            cache.ttl_seconds = t;
        }
        if let Some(e) = c.entries {
            if e == 0 {
                return Err(invalid("images.cache.entries", "must be at least 1"));
            }
            cache.entries = e;
        }
    }
    out.cache = cache;
    Ok(out)
}

/// `images.signers[i]`: a named key, or a keyless identity with its Fulcio roots.
fn signer(
    known: &[super::SignerSpec],
    path: &str,
    s: RawSigner,
    read: &KeyReader<'_>,
) -> Result<super::SignerSpec, Invalid> {
    use super::{SignerSource, SignerSpec};
    if s.name.trim().is_empty() {
        return Err(invalid(format!("{path}.name"), "a signer needs a name"));
    }
    if known.iter().any(|o| o.name == s.name) {
        return Err(invalid(
            format!("{path}.name"),
            format!("signer `{}` is named twice", s.name),
        ));
    }
    let source = match (s.key, s.identity, s.issuer) {
        (Some(k), None, None) if s.fulcio_roots.is_empty() => SignerSource::Key {
            pem: public_key_pem(&k, &format!("{path}.key"), read)?,
        },
        (None, Some(identity), Some(issuer)) => {
            if s.fulcio_roots.is_empty() {
                return Err(invalid(
                    format!("{path}.fulcioRoots"),
                    "a keyless signer needs the Fulcio root certificates it chains to",
                ));
            }
            let mut roots = Vec::new();
            for (j, r) in s.fulcio_roots.iter().enumerate() {
                roots.push(certificate_pem(r, format!("{path}.fulcioRoots[{j}]"), read)?);
            }
            SignerSource::Keyless {
                identity,
                issuer,
                roots,
            }
        }
        _ => {
            return Err(invalid(
                path,
                "a signer has either `key` (a cosign.pub), or `identity`, `issuer` and `fulcioRoots` (keyless)",
            ))
        }
    };
    Ok(SignerSpec {
        name: s.name,
        source,
    })
}

/// `images.require`: layer lists (`L3,L4`) to the signers any one of which must have signed.
fn image_requirements(
    signers: &[super::SignerSpec],
    map: BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<Layer, Vec<String>>, Invalid> {
    let mut req = BTreeMap::new();
    for (layers, names) in map {
        let rpath = format!("images.require.{layers}");
        let set = LayerSet::parse_items(layers.split(',')).map_err(at(rpath.clone()))?;
        for n in &names {
            if !signers.iter().any(|s| &s.name == n) {
                return Err(invalid(
                    rpath,
                    format!("`{n}` is not a signer in images.signers"),
                ));
            }
        }
        for l in set.iter() {
            req.insert(l, names.clone());
        }
    }
    Ok(req)
}

/// `images.registries`: plain-HTTP hosts, extra CAs, the call timeout.
fn registries(r: RawRegistries, read: &KeyReader<'_>) -> Result<super::RegistrySpec, Invalid> {
    let mut registries = super::RegistrySpec {
        insecure: r.insecure,
        ..Default::default()
    };
    for (i, c) in r.ca.iter().enumerate() {
        let pem = certificate_pem(c, format!("images.registries.ca[{i}]"), read)?;
        registries.ca.push(pem);
    }
    if let Some(t) = r.timeout_seconds {
        if t == 0 || t > 30 {
            return Err(invalid(
                "images.registries.timeoutSeconds",
                "must be 1 to 30 (the webhook answers within the API server's timeout)",
            ));
        }
        registries.timeout_seconds = t;
    }
    Ok(registries)
}

/// `ledger.url`.
fn ledger(l: RawLedger) -> Result<String, Invalid> {
    if l.url.trim().is_empty() {
        return Err(invalid(
            "ledger.url",
            "is empty (a postgres:// URL or an SQLite file)",
        ));
    }
    Ok(l.url)
}

/// `rekor`: the log's URL and public key.
fn rekor(r: RawRekor, read_key: &KeyReader<'_>) -> Result<RekorSpec, Invalid> {
    if let Some(u) = &r.url {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            return Err(invalid("rekor.url", format!("`{u}` is not an http(s) URL")));
        }
    }
    let key = match &r.key {
        Some(k) => Some(public_key_pem(k, "rekor.key", read_key)?),
        None => None,
    };
    Ok(RekorSpec {
        url: r.url,
        key,
        required: r.required,
    })
}

/// `locks`: the keys that sign locks, and where the webhook reads them.
fn locks(
    out: &mut super::LockPolicy,
    l: RawLocks,
    read_key: &KeyReader<'_>,
) -> Result<(), Invalid> {
    for (i, k) in l.keys.iter().enumerate() {
        let pem = public_key_pem(k, &format!("locks.keys[{i}]"), read_key)?;
        out.keys.push(pem);
    }
    out.source = match l.source.as_deref() {
        None | Some("registry") => super::LockSource::Registry,
        Some("profiles") => super::LockSource::Profiles,
        Some(other) => {
            return Err(invalid(
                "locks.source",
                format!("`{other}` is not a lock source; write registry or profiles"),
            ))
        }
    };
    Ok(())
}
