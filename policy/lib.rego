# sostle suite — shared helpers (SPEC §2–§4). Every file of policy/ is `package main`, so
# conftest loads them together: conftest test --all-namespaces -p policy/ -d policy/data.json manifest.yaml
# Inputs: data.sostle.layer (else from the namespace), data.sostle.epoch_day (else from the clock
# and the origin), data.sostle.now_ns (else time.now_ns()), data.sostle.config (else default_config).
package main

import rego.v1

# `data.sostle.…` with an else, never `object.get(data, …)`: a reference to the whole of `data`
# includes this package's own rules, which OPA's compiler (and so conftest) rejects as recursion.
cfg := c if {
	c := data.sostle.config
} else := default_config

now_ns := n if {
	n := data.sostle.now_ns
} else := time.now_ns()

epoch_day := d if {
	d := data.sostle.epoch_day
} else := floor((now_ns - cfg.origin_ns) / 86400000000000)

meta := m if {
	m := input.metadata
	is_object(m)
} else := {}

labels := l if {
	l := meta.labels
	is_object(l)
} else := {}

annotations := a if {
	a := meta.annotations
	is_object(a)
} else := {}

# A label or annotation value as text (numbers and booleans in their canonical form).
text(v) := v if is_string(v)

text(v) := sprintf("%v", [v]) if {
	not is_string(v)
	v != null
	not is_object(v)
	not is_array(v)
}

label(k) := text(labels[k])

annotation(k) := text(annotations[k])

# `not label_is(k, v)` rather than `not label(k) == v`: OPA hoists the call out of a negated
# comparison, so a missing label would make the whole rule fail instead of the `not` hold.
label_is(k, v) if label(k) == v

annotation_is(k, v) if annotation(k) == v

kind := k if {
	k := input.kind
	is_string(k)
} else := ""

name := n if {
	n := meta.name
	is_string(n)
} else := n if {
	n := meta.generateName
	is_string(n)
} else := ""

namespace := n if {
	n := meta.namespace
	is_string(n)
}

resource_id := sprintf("%s/%s/%s", [kind, namespace, name]) if namespace

resource_id := sprintf("%s/%s", [kind, name]) if not namespace

ungoverned := {"kube-system", "kube-public", "kube-node-lease"}

layer_names := {"L0", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "trial"}

parse_layer(s) := "trial" if lower(s) == "trial"

parse_layer(s) := upper(s) if {
	upper(s) in layer_names
	upper(s) != "TRIAL"
}

# The namespace a resource lives in (a Namespace object: itself).
home_ns := name if kind == "Namespace"

home_ns := namespace if {
	kind != "Namespace"
	namespace
}

# The layer of a namespace by config and name (never the flag; labels are not visible here).
ns_layer(ns) := l if {
	l := cfg.namespaces[ns]
} else := l if {
	some l, spec in cfg.layers
	spec.namespace == ns
} else := "trial" if {
	ns == "chaos-trial"
} else := l if {
	startswith(ns, "sostle-l")
	d := substring(ns, 8, 1)
	d in {"0", "1", "2", "3", "4", "5", "6", "7"}
	substring(ns, 9, 1) == "-"
	l := concat("", ["L", d])
}

layer := "ungoverned" if {
	home_ns in ungoverned
} else := l if {
	l := data.sostle.layer
} else := l if {
	kind == "Namespace"
	l := parse_layer(label("sostle-layer"))
} else := l if {
	l := ns_layer(home_ns)
} else := l if {
	l := cfg.default_layer
	l != null
} else := "unlayered"

governed if layer in layer_names

workload_kinds := {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}

is_workload if kind in workload_kinds

spec_path := ["spec"] if kind == "Pod"

spec_path := ["spec", "jobTemplate", "spec", "template", "spec"] if kind == "CronJob"

spec_path := ["spec", "template", "spec"] if {
	is_workload
	not kind in {"Pod", "CronJob"}
}

pod_spec := s if {
	s := object.get(input, spec_path, null)
	is_object(s)
}

prefix := concat(".", spec_path)

groups := ["initContainers", "containers", "ephemeralContainers"] if kind == "Pod"

groups := ["initContainers", "containers"] if kind != "Pod"

# Every container with its sort, index, name and path.
containers contains e if {
	some group in groups
	list := object.get(pod_spec, group, [])
	is_array(list)
	some i, c in list
	is_object(c)
	cname := object.get(c, "name", sprintf("#%d", [i]))
	e := {"group": group, "index": i, "c": c, "name": cname, "path": sprintf("%s.%s[%d]", [prefix, group, i])}
}

regular_and_init contains e if {
	some e in containers
	e.group != "ephemeralContainers"
}

regular contains e if {
	some e in containers
	e.group == "containers"
}

is_set(v) if {
	v != null
}

# Objects of the wrong shape: the API server would refuse them; here they fail every
# applicable policy rather than pass silently.
shape_errors contains sprintf("%s.%s is not a list of containers", [prefix, group]) if {
	some group in groups
	v := object.get(pod_spec, group, null)
	v != null
	not is_array(v)
}

shape_errors contains sprintf("%s.%s[%d] is not a mapping", [prefix, group, i]) if {
	some group in groups
	list := object.get(pod_spec, group, [])
	is_array(list)
	some i, c in list
	not is_object(c)
}

shape_errors contains sprintf("%s.%s is the wrong type", [e.path, key]) if {
	some e in containers
	some key, want in {"image": "string", "securityContext": "object", "resources": "object", "env": "array", "args": "array", "command": "array"}
	v := object.get(e.c, key, null)
	v != null
	type_name(v) != want
}

shape_errors contains sprintf("%s.resources.limits is not a mapping", [e.path]) if {
	some e in containers
	v := object.get(e.c, ["resources", "limits"], null)
	v != null
	not is_object(v)
}

shape_errors contains "metadata is not a mapping" if {
	m := input.metadata
	m != null
	not is_object(m)
}

shape_errors contains sprintf("%s is not a mapping", [concat(".", array.slice(spec_path, 0, n))]) if {
	is_workload
	some n in numbers.range(1, count(spec_path))
	v := object.get(input, array.slice(spec_path, 0, n), null)
	v != null
	not is_object(v)
}

# Not named `violation`: conftest queries every rule called deny*/violation*/warn* as a result
# rule, and would call this function as one.
finding(msg, path) := {"msg": msg, "path": path}
