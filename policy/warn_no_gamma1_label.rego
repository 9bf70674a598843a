# sostle suite — warn_no_gamma1_label (SPEC §3). Layers, verdict and escalation are data: cfg.policies.warn_no_gamma1_label.
package main

import rego.v1

# warn_no_gamma1_label: label gamma1 is 14134725141734693 (DENY from Day 100 by escalation).
gamma1 := "14134725141734693"

v_warn_no_gamma1_label contains finding("label gamma1 is missing", "metadata.labels.gamma1") if {
	not label("gamma1")
}

v_warn_no_gamma1_label contains finding(sprintf("label gamma1 is `%s`, not %s", [label("gamma1"), gamma1]), "metadata.labels.gamma1") if {
	label("gamma1") != gamma1
}
