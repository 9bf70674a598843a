# Rules for chart values files, which are not Kubernetes objects: -n helm.
package helm

deny contains msg if {
	input.image.tag == "latest"
	msg := sprintf("values: image %s pins no version (tag latest)", [input.image.repository])
}

warn contains msg if {
	input.replicaCount < 2
	msg := "values: replicaCount below 2"
}
