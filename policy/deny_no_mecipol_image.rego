# sostle suite — deny_no_mecipol_image (SPEC §3). Layers, verdict and escalation are data: cfg.policies.deny_no_mecipol_image.
package main

import rego.v1

# deny_no_mecipol_image: locked by a trial, running the locked image (the lock registry's
# part needs the ledger or the cluster's profiles, which sostle itself consults).
v_deny_no_mecipol_image contains finding("label mecipol-locked=true is missing: the image was not locked by a trial", "metadata.labels.mecipol-locked") if {
	not label_is("mecipol-locked", "true")
}

v_deny_no_mecipol_image contains finding("annotation mecipol-image is missing", "metadata.annotations.mecipol-image") if {
	not is_string(annotations["mecipol-image"])
}

v_deny_no_mecipol_image contains finding(sprintf("image %s is not the locked image %s", [e.c.image, locked]), sprintf("%s.image", [e.path])) if {
	locked := annotations["mecipol-image"]
	is_string(locked)
	some e in containers
	is_string(e.c.image)
	e.c.image != locked
}
