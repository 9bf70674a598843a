# A user policy in conftest's conventions, for `sostle test --policy examples/rego` and the
# user-Rego benchmark: results are objects with `msg` and a `path` sostle locates.
package main

import rego.v1

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet"}

deny_run_as_root contains {"msg": sprintf("%s %s must set runAsNonRoot", [input.kind, input.metadata.name]), "path": "spec.template.spec.securityContext"} if {
	input.kind in workload_kinds
	not input.spec.template.spec.securityContext.runAsNonRoot
}

warn_app_label contains {"msg": sprintf("%s %s has no app.kubernetes.io/name label", [input.kind, input.metadata.name]), "path": "metadata.labels"} if {
	input.kind in workload_kinds
	not input.metadata.labels["app.kubernetes.io/name"]
}

exception contains rules if {
	input.metadata.annotations["example.com/legacy"] == "true"
	rules := ["run_as_root"]
}
