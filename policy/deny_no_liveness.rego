# sostle suite — deny_no_liveness (SPEC §3). Layers, verdict and escalation are data: cfg.policies.deny_no_liveness.
package main

import rego.v1

# deny_no_liveness: every regular container has a liveness probe.
v_deny_no_liveness contains finding(sprintf("container %s has no liveness probe", [e.name]), sprintf("%s.livenessProbe", [e.path])) if {
	some e in regular
	not is_set(object.get(e.c, "livenessProbe", null))
}
