# sostle suite — deny_cross_layer (SPEC §3). Layers, verdict and escalation are data: cfg.policies.deny_cross_layer.
package main

import rego.v1

# deny_cross_layer (a): the sostle-layer label disagrees with the layer.
# The namespace's own layer (config, name, default layer), else the layer judged at.
namespace_layer := l if {
	l := ns_layer(namespace)
} else := l if {
	namespace
	not namespace in ungoverned
	l := cfg.default_layer
	l != null
} else := layer

v_deny_cross_layer contains finding(sprintf("label sostle-layer is `%s`, but the namespace's layer is %s", [label("sostle-layer"), namespace_layer]), "metadata.labels.sostle-layer") if {
	t := label("sostle-layer")
	not names_namespace_layer(t)
}

# A comparison under `not` goes through a rule: OPA hoists a call out of a negated comparison, so
# `not parse_layer(t) == x` would fail outright (not hold) where parse_layer(t) is undefined.
names_namespace_layer(t) if parse_layer(t) == namespace_layer

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
v_deny_cross_layer contains finding(sprintf("binds ServiceAccount %s/%s of layer %s into layer %s", [ns, object.get(s, "name", "?"), other, layer]), sprintf("subjects[%d].namespace", [i])) if {
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

v_deny_cross_layer contains finding(sprintf("container %s reaches Service %s.%s in layer %s from layer %s", [e.name, m[1], m[2], other, layer]), sprintf("%s.%s", [e.path, where])) if {
	is_workload
	some [e, t, where] in service_texts
	some m in regex.find_all_string_submatch_n(svc_re, t, -1)
	other := foreign(m[2])
}
