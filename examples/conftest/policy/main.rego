# The team's rules for its Kubernetes manifests (conftest conventions: deny, violation and warn,
# `_suffix` forms, exception). Run: conftest test -p policy -d data manifests
# — or, the same: sostle test -p policy -d data manifests -o conftest
package main

import data.lib.k8s

deny contains msg if {
	k8s.is_workload
	some c in k8s.containers
	not c.securityContext.runAsNonRoot
	msg := sprintf("%s: container %s must set securityContext.runAsNonRoot", [k8s.name, c.name])
}

deny contains msg if {
	k8s.is_workload
	some c in k8s.containers
	endswith(c.image, ":latest")
	msg := sprintf("%s: container %s uses the latest tag", [k8s.name, c.name])
}

# Images come from the registries the data file allows.
deny_registry contains msg if {
	k8s.is_workload
	some c in k8s.containers
	registry := split(c.image, "/")[0]
	not registry in data.registries.allowed
	msg := sprintf("%s: image %s is not from an allowed registry (%s)", [k8s.name, c.image, concat(", ", data.registries.allowed)])
}

# Objects with a message and a path to the field.
violation contains {"msg": msg, "path": "metadata.labels.team"} if {
	k8s.is_workload
	not k8s.labels.team
	msg := sprintf("%s: every workload names its team (label team)", [k8s.name])
}

# Teams come from the registry in data/teams (loaded at data.teams).
warn_team contains msg if {
	k8s.is_workload
	team := k8s.labels.team
	not data.teams[team]
	msg := sprintf("%s: team %s is not in the team registry", [k8s.name, team])
}

warn contains msg if {
	k8s.is_service
	input.spec.type == "NodePort"
	msg := sprintf("%s: NodePort services are reachable on every node", [k8s.name])
}

warn_replicas contains msg if {
	input.kind == "Deployment"
	input.spec.replicas < 2
	msg := sprintf("%s: fewer than 2 replicas", [k8s.name])
}

# A workload may run outside the allowed registries when it says so (a vendor's image).
exception contains rules if {
	k8s.labels["policy.example.com/vendor-image"] == "true"
	rules := ["registry"]
}
