#!/usr/bin/env python3
"""Records how kubectl reads each YAML scalar spelling, for the kubectl-differential fuzz target
(fuzz/fuzz_targets/kubectl_tokens.rs reads fuzz/kubectl-tokens.json). For every token, three
forms, each in a file of its own read with `kubectl annotate --local -o json` (the decoder
`kubectl create` uses; no server needed): as a block value, as a flow-sequence item, and as a
mapping key. A form kubectl refuses is recorded as null.

Usage: scripts/record-kubectl-tokens.py [kubectl]   (kubectl from scripts/test.sh's cache)"""
import json
import os
import subprocess
import sys
import tempfile

KUBECTL = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/sostle/bin/kubectl")
TOKENS = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF", "true", "True", "TRUE", "false", "False", "FALSE", "yEs", "oN", "tRUE", "nO",
    '"y"', "'yes'", '"true"', "'off'", '!!bool "yes"', "!!bool y", '!!bool "1"', "!!str yes",
    "!!str true", "!!str 012", "!!int yes", '!!int "12"', "!!float 1", "~", "null", "Null",
    "NULL", "0", "1", "-1", "+1", "012", "0o12", "0x1F", "0X1f", "0b101", "-0b11", "08",
    "1_000", "1e3", "1E-2", ".5", "-.5", "1.", "6.8523015e+5", "685.230_15e+03", "0x_1F",
    "+0x10", "14134725141734693", "18446744073709551615", "9223372036854775807",
    "-9223372036854775808", "1e400", ".inf", "-.Inf", ".NaN", '"012"', "'0x1F'", "1:20",
    "190:20:30", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10",
    "latest", "nginx:1.25", "registry:5000/app", "a b", "'it''s'", '"tab\\there"', "!custom x",
    "_1", "14134725141734693x", "0x", "yes please", '""', "''", "100m", "64Mi", "<<x",
]


def read(text):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        out = subprocess.run([KUBECTL, "annotate", "--local", "-o", "json", "-f", path, "o=1"],
                             capture_output=True, text=True, env=dict(os.environ, KUBECONFIG="/dev/null"))
    finally:
        os.unlink(path)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)["spec"]


head = "apiVersion: v1\nkind: Probe\nmetadata:\n  name: t\nspec:\n"
table = []
for t in TOKENS:
    value = read(head + "  value: %s\n" % t)
    flow = read(head + "  flow: [%s]\n" % t)
    key = read(head + "  keys:\n    %s: 1\n" % t)
    table.append({
        "token": t,
        "value": None if value is None else {"v": value.get("value")},
        "flow": None if flow is None else {"v": (flow.get("flow") or [None])[0]},
        "key": None if key is None else {"v": list((key.get("keys") or {}).keys())[0] if key.get("keys") else None},
    })
json.dump({"kubectl": subprocess.run([KUBECTL, "version", "--client", "-o", "json"], capture_output=True,
                                     text=True).stdout and json.loads(subprocess.run([KUBECTL, "version", "--client", "-o", "json"], capture_output=True, text=True).stdout)["clientVersion"]["gitVersion"],
           "tokens": table}, sys.stdout, indent=1)
print()
