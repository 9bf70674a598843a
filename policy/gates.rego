# sostle suite — the layer gates of SPEC §2, reported as policy `layer_gate`. Gates judge
# workload kinds only and are never exemptable.
package main

import rego.v1

# Which gate a layer has is the layer table's (cfg.layers[L].gate), not a second copy here.
gate := cfg.layers[layer].gate

write_ops := {"write", "create", "update", "patch", "delete"}

crew_member(who) := m if {
	some m in cfg.crew
	who in {m.name, object.get(m, "identity", null)}
}

named_crew := crew_member(label("crew-member"))

crew_problems contains "label crew-member is missing" if not label("crew-member")

crew_problems contains sprintf("crew-member `%s` is not registered crew", [label("crew-member")]) if {
	label("crew-member")
	not named_crew
}

role_problems(role) := {sprintf("crew member %s lacks the `%s` role that %s requires", [named_crew.name, role, layer]) |
	not role in named_crew.roles
}

gate_violations contains finding(sprintf("L1 is read-only, but the workload declares write operations: %s", [concat(",", ops)]), "metadata.annotations.sostle.eose.ca/operations") if {
	gate == "readonly"
	ops := [o | some x in split(annotation("sostle.eose.ca/operations"), ","); o := trim_space(x); lower(o) in write_ops]
	count(ops) > 0
}

gate_violations contains finding("L2 expects Google SSO (annotation sostle.eose.ca/sso: google)", "metadata.annotations.sostle.eose.ca/sso") if {
	gate == "sso"
	not annotation_is("sostle.eose.ca/sso", "google")
}

gate_violations contains finding(p, "metadata.labels.crew-member") if {
	gate in {"crew", "token", "kay", "mega"}
	some p in crew_problems
}

gate_violations contains finding("L4 needs a valid SOSTLE token (label sostle-token); verify it with `sostle token verify`", "metadata.labels.sostle-token") if {
	gate == "token"
	not token_valid
}

# Tokens are HMACs over a secret the Rego bundle does not hold: a token is valid here only when
# the caller passes data.sostle.valid_tokens (sostle's own engine verifies them natively).
token_valid if label("sostle-token") in data.sostle.valid_tokens

gate_violations contains finding(p, "metadata.labels.crew-member") if {
	gate == "kay"
	some p in role_problems("l5-authorized")
}

gate_violations contains finding("L5 admits only what Kay approved, and label kay-approved is not `true`", "metadata.labels.kay-approved") if {
	gate == "kay"
	not label_is("kay-approved", "true")
}

# Kay's approval is a signature over the pod template (SPEC §5, docs/gates.md). OPA cannot verify
# an ECDSA signature over arbitrary bytes, so under conftest it never holds (crypto.rego);
# sostle's own engine verifies it natively.
kay_keys := [k | some m in cfg.crew; "kay" in m.roles; some k in m.keys]

gate_violations contains finding("L5: Kay's approval (annotation sostle.eose.ca/kay-approval) is missing or does not verify over this workload", "metadata.annotations.sostle.eose.ca/kay-approval") if {
	gate == "kay"
	not kay_approval_verified(input, kay_keys, cfg.max_days, now_ns)
}

gate_violations contains finding(sprintf("%s is closed: no %s may run here (ConfigMaps and Secrets only)", [layer, kind]), "kind") if {
	gate == "closed"
}

gate_violations contains finding("L7 needs all five MEGSCIFIAR gates open", "kind") if {
	gate == "mega"
	not cfg.gates_open
}

gate_violations contains finding(p, "metadata.labels.crew-member") if {
	gate == "mega"
	some p in role_problems("megscifiar")
}

gate_verdict := "warn" if gate in {"readonly", "sso"}

gate_verdict := "deny" if not gate in {"readonly", "sso"}
