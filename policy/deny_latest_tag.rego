# sostle suite — deny_latest_tag (SPEC §3). Layers, verdict and escalation are data: cfg.policies.deny_latest_tag.
package main

import rego.v1

# deny_latest_tag: every container has an image, and every image a tag other than latest, or a
# sha256 digest.
image_rest(image) := split(image, "@")[0]

digest_ok(image) if {
	contains(image, "@")
	regex.match(`^sha256:[0-9a-fA-F]{64}$`, split(image, "@")[1])
}

image_tag(image) := t if {
	segs := split(image_rest(image), "/")
	last := segs[count(segs) - 1]
	contains(last, ":")
	parts := split(last, ":")
	t := parts[count(parts) - 1]
	t != ""
}

v_deny_latest_tag contains finding(msg, sprintf("%s.image", [e.path])) if {
	some e in containers
	image := e.c.image
	is_string(image)
	not digest_ok(image)
	msg := latest_msg(image)
}

latest_msg(image) := sprintf("image %s has no tag and no digest", [image]) if not image_tag(image)

latest_msg(image) := sprintf("image %s uses the `latest` tag", [image]) if image_tag(image) == "latest"

# A container without an image (missing, not a string, or empty) is judged, not skipped.
v_deny_latest_tag contains finding(sprintf("container %s has no image", [e.name]), sprintf("%s.image", [e.path])) if {
	some e in containers
	not image_set(e.c)
}

image_set(c) if {
	is_string(c.image)
	trim_space(c.image) != ""
}
