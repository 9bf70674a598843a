#!/usr/bin/env python3
"""Writes an OCI image layout holding one small image (one tar layer with `hello.txt` saying
CONTENT), tagged TAG, for `skopeo copy oci:DIR:TAG docker://…` to push into a test registry.
Distinct CONTENT gives a distinct digest.

Usage: oci-image.py DIR CONTENT TAG
"""
import hashlib
import io
import json
import os
import sys
import tarfile

d, content, tag = sys.argv[1], sys.argv[2], sys.argv[3]
b = os.path.join(d, "blobs", "sha256")
os.makedirs(b, exist_ok=True)


def put(data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(b, h), "wb") as f:
        f.write(data)
    return "sha256:" + h, len(data)


buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    body = (content + "\n").encode()
    info = tarfile.TarInfo("hello.txt")
    info.size = len(body)
    t.addfile(info, io.BytesIO(body))
layer, ls = put(buf.getvalue())
cfg, cs = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode())
m, ms = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cs},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": ls}]}).encode())
with open(os.path.join(d, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(d, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": m, "size": ms, "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
