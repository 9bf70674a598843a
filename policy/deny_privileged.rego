# sostle suite — deny_privileged (SPEC §3). Layers, verdict and escalation are data: cfg.policies.deny_privileged.
package main

import rego.v1

# deny_privileged: no container of any sort is privileged.
v_deny_privileged contains finding(sprintf("container %s runs privileged", [e.name]), sprintf("%s.securityContext.privileged", [e.path])) if {
	some e in containers
	object.get(e.c, ["securityContext", "privileged"], false) == true
}
