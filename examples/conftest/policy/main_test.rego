package main

import rego.v1

deployment(securityContext, image) := {
	"kind": "Deployment",
	"metadata": {"name": "web", "labels": {"team": "payments"}},
	"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": image, "securityContext": securityContext}]}}},
}

test_root_is_denied if {
	some msg in deny with input as deployment({}, "ghcr.io/example/web:1.2")
	contains(msg, "runAsNonRoot")
}

test_non_root_passes if {
	count(deny) == 0 with input as deployment({"runAsNonRoot": true}, "ghcr.io/example/web:1.2")
}

test_latest_is_denied if {
	count(deny) == 1 with input as deployment({"runAsNonRoot": true}, "ghcr.io/example/web:latest")
}

test_unknown_registry_is_denied if {
	count(deny_registry) == 1 with input as deployment({"runAsNonRoot": true}, "quay.io/x/web:1.2")
		with data.registries.allowed as ["ghcr.io"]
}

test_nodeport_warns if {
	count(warn) == 1 with input as {"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "NodePort"}}
}

# A test that is wrong on purpose would fail `verify`; this one is right.
test_vendor_image_is_excepted if {
	exception == {["registry"]} with input as {"kind": "Deployment", "metadata": {"name": "v", "labels": {"policy.example.com/vendor-image": "true"}}}
}
