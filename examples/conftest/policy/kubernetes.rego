# A second package: evaluated with -n kubernetes, -n 'kube*' or --all-namespaces.
package kubernetes

warn contains msg if {
	input.kind == "Deployment"
	not input.spec.template.spec.containers[0].resources.limits
	msg := sprintf("%s: no resource limits on its first container", [input.metadata.name])
}
