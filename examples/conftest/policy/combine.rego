# Rules across documents, for --combine: input is an array of {path, contents}.
package combine

deployments := [d.contents | some d in input; d.contents.kind == "Deployment"]

services := [s.contents | some s in input; s.contents.kind == "Service"]

deny contains msg if {
	some d in deployments
	not served(d)
	msg := sprintf("deployment %s has no Service selecting its pods", [d.metadata.name])
}

served(d) if {
	some s in services
	every k, v in s.spec.selector {
		d.spec.template.metadata.labels[k] == v
	}
}
