# sostle suite — deny_no_limits (SPEC §3). Layers, verdict and escalation are data: cfg.policies.deny_no_limits.
package main

import rego.v1

# deny_no_limits: containers and init containers set CPU and memory limits.
v_deny_no_limits contains finding(sprintf("container %s sets no %s limit", [e.name, label_of[res]]), sprintf("%s.resources.limits.%s", [e.path, res])) if {
	some e in regular_and_init
	some res in ["cpu", "memory"]
	not is_set(object.get(e.c, ["resources", "limits", res], null))
}

label_of := {"cpu": "CPU", "memory": "memory"}
