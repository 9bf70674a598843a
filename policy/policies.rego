# sostle suite — the ten policies of SPEC §3, each a set of violations {msg, path}. Which
# layers, verdicts and escalations apply is data (cfg.policies); see outcomes.rego.
package main

import rego.v1

# deny_no_limits: containers and init containers set CPU and memory limits.
v_deny_no_limits contains violation(sprintf("container %s sets no %s limit", [e.name, label_of[res]]), sprintf("%s.resources.limits.%s", [e.path, res])) if {
	some e in regular_and_init
	some res in ["cpu", "memory"]
	not is_set(object.get(e.c, ["resources", "limits", res], null))
}

label_of := {"cpu": "CPU", "memory": "memory"}

# deny_no_readonly: a read-only root filesystem everywhere but ephemeral containers.
v_deny_no_readonly contains violation(sprintf("container %s does not have a read-only root filesystem", [e.name]), sprintf("%s.securityContext.readOnlyRootFilesystem", [e.path])) if {
	some e in regular_and_init
	object.get(e.c, ["securityContext", "readOnlyRootFilesystem"], false) != true
}

# deny_privileged: no container of any sort is privileged.
v_deny_privileged contains violation(sprintf("container %s runs privileged", [e.name]), sprintf("%s.securityContext.privileged", [e.path])) if {
	some e in containers
	object.get(e.c, ["securityContext", "privileged"], false) == true
}

# deny_latest_tag: every image has a tag other than latest, or a sha256 digest.
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

v_deny_latest_tag contains violation(msg, sprintf("%s.image", [e.path])) if {
	some e in containers
	image := e.c.image
	is_string(image)
	not digest_ok(image)
	msg := latest_msg(image)
}

latest_msg(image) := sprintf("image %s has no tag and no digest", [image]) if not image_tag(image)

latest_msg(image) := sprintf("image %s uses the `latest` tag", [image]) if image_tag(image) == "latest"

# deny_no_liveness: every regular container has a liveness probe.
v_deny_no_liveness contains violation(sprintf("container %s has no liveness probe", [e.name]), sprintf("%s.livenessProbe", [e.path])) if {
	some e in regular
	not is_set(object.get(e.c, "livenessProbe", null))
}

# warn_no_gamma1_label: label gamma1 is 14134725141734693 (DENY from Day 100 by escalation).
gamma1 := "14134725141734693"

v_warn_no_gamma1_label contains violation("label gamma1 is missing", "metadata.labels.gamma1") if {
	not label("gamma1")
}

v_warn_no_gamma1_label contains violation(sprintf("label gamma1 is `%s`, not %s", [label("gamma1"), gamma1]), "metadata.labels.gamma1") if {
	label("gamma1") != gamma1
}

# warn_no_security_ctx: the pod or every container sets a non-empty security context.
empty(v) if v == null

empty(v) if v == {}

empty(v) if v == []

v_warn_no_security_ctx contains violation(sprintf("neither the pod nor container %s sets a securityContext", [e.name]), sprintf("%s.securityContext", [e.path])) if {
	empty(object.get(pod_spec, "securityContext", null))
	some e in regular_and_init
	empty(object.get(e.c, "securityContext", null))
}

# deny_cross_layer (a): the sostle-layer label disagrees with the layer.
v_deny_cross_layer contains violation(sprintf("label sostle-layer is `%s`, but the resource is in layer %s", [label("sostle-layer"), layer]), "metadata.labels.sostle-layer") if {
	t := label("sostle-layer")
	not parse_layer(t) == layer
}

foreign(ns) := l if {
	ns != namespace
	l := ns_layer(ns)
	l != layer
}

foreign(ns) := l if {
	not namespace
	l := ns_layer(ns)
	l != layer
}

# (b): a RoleBinding binds a ServiceAccount of another layer.
v_deny_cross_layer contains violation(sprintf("binds ServiceAccount %s/%s of layer %s into layer %s", [ns, object.get(s, "name", "?"), other, layer]), sprintf("subjects[%d].namespace", [i])) if {
	kind == "RoleBinding"
	subjects := object.get(input, "subjects", [])
	is_array(subjects)
	some i, s in subjects
	object.get(s, "kind", "") == "ServiceAccount"
	ns := object.get(s, "namespace", namespace)
	is_string(ns)
	other := foreign(ns)
}

# (c): a container names a Service DNS name of another layer.
svc_re := `([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local|[^A-Za-z0-9_.-]|$)`

service_texts contains [e, t, sprintf("env[%d].value", [i])] if {
	some e in containers
	envs := object.get(e.c, "env", [])
	is_array(envs)
	some i, env in envs
	is_object(env)
	t := env.value
	is_string(t)
}

service_texts contains [e, t, sprintf("%s[%d]", [key, i])] if {
	some e in containers
	some key in ["args", "command"]
	items := object.get(e.c, key, [])
	is_array(items)
	some i, t in items
	is_string(t)
}

v_deny_cross_layer contains violation(sprintf("container %s reaches Service %s.%s in layer %s from layer %s", [e.name, m[1], m[2], other, layer]), sprintf("%s.%s", [e.path, where])) if {
	is_workload
	some [e, t, where] in service_texts
	some m in regex.find_all_string_submatch_n(svc_re, t, -1)
	other := foreign(m[2])
}

# deny_no_mecipol_image: locked by a trial, running the locked image (the lock registry's
# part needs the ledger or the cluster's profiles, which sostle itself consults).
v_deny_no_mecipol_image contains violation("label mecipol-locked=true is missing: the image was not locked by a trial", "metadata.labels.mecipol-locked") if {
	not label("mecipol-locked") == "true"
}

v_deny_no_mecipol_image contains violation("annotation mecipol-image is missing", "metadata.annotations.mecipol-image") if {
	not is_string(annotations["mecipol-image"])
}

v_deny_no_mecipol_image contains violation(sprintf("image %s is not the locked image %s", [e.c.image, locked]), sprintf("%s.image", [e.path])) if {
	locked := annotations["mecipol-image"]
	is_string(locked)
	some e in containers
	is_string(e.c.image)
	e.c.image != locked
}

# warn_trendal_missing: a trendal id, and a warmth in [floor, 1].
v_warn_trendal_missing contains violation("annotation sostle.eose.ca/trendal (the trendal ID) is missing", "metadata.annotations.sostle.eose.ca/trendal") if {
	not trim_space(annotation("sostle.eose.ca/trendal")) != ""
}

warmth_path := "metadata.annotations.sostle.eose.ca/trendal-warmth"

number_re := `^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`

v_warn_trendal_missing contains violation("annotation sostle.eose.ca/trendal-warmth is missing", warmth_path) if {
	not annotation("sostle.eose.ca/trendal-warmth")
}

v_warn_trendal_missing contains violation(sprintf("trendal warmth `%s` is not a number", [w]), warmth_path) if {
	w := trim_space(annotation("sostle.eose.ca/trendal-warmth"))
	not regex.match(number_re, w)
}

v_warn_trendal_missing contains violation(sprintf("trendal warmth %s is out of range (floor %v, at most 1)", [w, floor_w]), warmth_path) if {
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
