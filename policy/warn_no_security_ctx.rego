# sostle suite — warn_no_security_ctx (SPEC §3). Layers, verdict and escalation are data: cfg.policies.warn_no_security_ctx.
package main

import rego.v1

# warn_no_security_ctx: the pod or every container sets a non-empty security context.
empty(v) if v == null

empty(v) if v == {}

empty(v) if v == []

v_warn_no_security_ctx contains finding(sprintf("neither the pod nor container %s sets a securityContext", [e.name]), sprintf("%s.securityContext", [e.path])) if {
	empty(object.get(pod_spec, "securityContext", null))
	some e in regular_and_init
	empty(object.get(e.c, "securityContext", null))
}
