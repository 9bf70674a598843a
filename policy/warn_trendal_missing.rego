# sostle suite — warn_trendal_missing (SPEC §3). Layers, verdict and escalation are data: cfg.policies.warn_trendal_missing.
package main

import rego.v1

# warn_trendal_missing: a trendal id, and a warmth in [floor, 1].
v_warn_trendal_missing contains finding("annotation sostle.eose.ca/trendal (the trendal ID) is missing", "metadata.annotations.sostle.eose.ca/trendal") if {
	not trendal_named
}

trendal_named if trim_space(annotation("sostle.eose.ca/trendal")) != ""

warmth_path := "metadata.annotations.sostle.eose.ca/trendal-warmth"

number_re := `^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`

v_warn_trendal_missing contains finding("annotation sostle.eose.ca/trendal-warmth is missing", warmth_path) if {
	not annotation("sostle.eose.ca/trendal-warmth")
}

v_warn_trendal_missing contains finding(sprintf("trendal warmth `%s` is not a number", [w]), warmth_path) if {
	w := trim_space(annotation("sostle.eose.ca/trendal-warmth"))
	not regex.match(number_re, w)
}

v_warn_trendal_missing contains finding(sprintf("trendal warmth %s is out of range (floor %v, at most 1)", [w, floor_w]), warmth_path) if {
	w := trim_space(annotation("sostle.eose.ca/trendal-warmth"))
	regex.match(number_re, w)
	floor_w := cfg.policies.warn_trendal_missing.floor
	n := to_number(w)
	not in_range(n, floor_w)
}

in_range(n, lo) if {
	n >= lo
	n <= 1
}
