# sostle suite — deny_no_readonly (SPEC §3). Layers, verdict and escalation are data: cfg.policies.deny_no_readonly.
package main

import rego.v1

# deny_no_readonly: a read-only root filesystem everywhere but ephemeral containers.
v_deny_no_readonly contains finding(sprintf("container %s does not have a read-only root filesystem", [e.name]), sprintf("%s.securityContext.readOnlyRootFilesystem", [e.path])) if {
	some e in regular_and_init
	object.get(e.c, ["securityContext", "readOnlyRootFilesystem"], false) != true
}
