# A small rule library, as teams keep one: imported by the policies of package main.
package lib.k8s

workload_kinds := {"Deployment", "StatefulSet", "DaemonSet", "Job"}

is_workload if input.kind in workload_kinds

is_service if input.kind == "Service"

name := input.metadata.name

pod_spec := input.spec.template.spec if is_workload

containers contains c if some c in pod_spec.containers

labels := object.get(input.metadata, "labels", {})
