# sostle suite — the ten policies by id (each defined in its own file).
package main

import rego.v1

violations := {
	"deny_no_limits": v_deny_no_limits,
	"deny_no_readonly": v_deny_no_readonly,
	"deny_privileged": v_deny_privileged,
	"deny_latest_tag": v_deny_latest_tag,
	"deny_no_liveness": v_deny_no_liveness,
	"warn_no_gamma1_label": v_warn_no_gamma1_label,
	"warn_no_security_ctx": v_warn_no_security_ctx,
	"deny_cross_layer": v_deny_cross_layer,
	"deny_no_mecipol_image": v_deny_no_mecipol_image,
	"warn_trendal_missing": v_warn_trendal_missing,
}
