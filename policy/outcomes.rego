# sostle suite — outcomes. `deny` and `warn` are what conftest prints; honoured exemptions go
# to `exempted` instead. Each result: {"msg", "policy", "resource", "path"}.
package main

import rego.v1

applies(p) if {
	pc := cfg.policies[p]
	pc.enabled
	layer in pc.layers
	scope_ok(pc.scope)
}

scope_ok("workloads") if is_workload

scope_ok("workloads_and_rolebindings") if is_workload

scope_ok("workloads_and_rolebindings") if kind == "RoleBinding"

verdict_of(p) := e.verdict if {
	e := cfg.policies[p].escalation
	e != null
	epoch_day >= e.day
} else := cfg.policies[p].verdict

policy_violations(p) := vs if {
	count(shape_errors) == 0
	vs := violations[p]
}

policy_violations(p) := {finding(sprintf("cannot be checked: %s", [e]), "") | some e in shape_errors} if {
	count(shape_errors) > 0
	count(violations[p]) == 0
}

policy_violations(p) := violations[p] if {
	count(shape_errors) > 0
	count(violations[p]) > 0
}

failing[p] := vs if {
	some p, _ in cfg.policies
	applies(p)
	vs := policy_violations(p)
	count(vs) > 0
}

result(p, v) := {"msg": sprintf("%s: %s", [p, v.msg]), "policy": p, "resource": resource_id, "path": v.path}

deny contains result(p, v) if {
	some p, vs in failing
	verdict_of(p) == "deny"
	not honoured(p)
	some v in vs
}

warn contains result(p, v) if {
	some p, vs in failing
	verdict_of(p) == "warn"
	not honoured(p)
	some v in vs
}

exempted contains result(p, v) if {
	some p, vs in failing
	honoured(p)
	some v in vs
}

deny contains result("layer_gate", v) if {
	governed
	is_workload
	gate_verdict == "deny"
	some v in gate_violations
}

warn contains result("layer_gate", v) if {
	governed
	is_workload
	gate_verdict == "warn"
	some v in gate_violations
}

# Everything at once, for engines that evaluate one rule per call (sostle's regorus bridge).
report := {"deny": deny, "warn": warn, "exempted": exempted}
