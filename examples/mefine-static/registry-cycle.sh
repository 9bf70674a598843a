#!/usr/bin/env bash
# The seed's trial with the lock living beside the image (SPEC §7, §11), end to end on a real
# OCI registry on loopback: push mefine-static, charge → burst → spiral → verdict → lock (the
# profile attached as a signed MECIPOL attestation, bound to the digest that ran) → promote
# (digest-pinned) → the webhook, with no profiles directory, admits the promoted workload and
# denies the same workload running an image that holds no lock.
#
#   examples/mefine-static/registry-cycle.sh [path/to/sostle]
#
# Needs docker-registry and skopeo (Debian packages), openssl, curl, python3. Everything lives
# in a fresh temporary directory; the clock is fixed with SOSTLE_NOW.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sostle=${1:-$root/target/release/sostle}
case $sostle in /*) ;; *) sostle=$(pwd)/$sostle ;; esac
work=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null || true; done; rm -rf "$work"' EXIT
here=$root/examples/mefine-static
export SOSTLE_LEDGER="$work/ledger.db" COSIGN_PASSWORD="${COSIGN_PASSWORD-mefine-static-demo}"
export DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG" && echo '{"auths":{}}' > "$DOCKER_CONFIG/config.json"
phase() { printf '\n== %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

phase "a registry on loopback, and mefine-static pushed to it"
reg=127.0.0.1:$(free_port)
printf 'version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: %s}\n' \
  "$work/storage" "$reg" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" 2> "$work/registry.log" &
pids="$pids $!"
for _ in $(seq 50); do curl -sf "http://$reg/v2/" > /dev/null && break; sleep 0.1; done
image=$reg/mefine-static:day97-v144
python3 "$root/scripts/oci-image.py" "$work/v144" "mefine-static day97-v144" day97-v144
skopeo copy --quiet --dest-tls-verify=false "oci:$work/v144:day97-v144" "docker://$image"
echo "$image"
sed "s|eosefleetacrdev.azurecr.io/mefine-static:day97-v144|$image|" "$here/fixed/deployment.yaml" > "$work/deployment.yaml"
sed "s|eosefleetacrdev.azurecr.io/mefine-static:day97-v144|$image|" "$here/evidence/live-pod.yaml" > "$work/live-pod.yaml"

phase "the trial: charge, burst, spiral, verdict"
SOSTLE_NOW=2026-05-11T10:00:00Z "$sostle" trial charge "$work/deployment.yaml" --target L2
SOSTLE_NOW=2026-05-11T10:05:00Z "$sostle" trial burst TRB-CHAOS-001 > /dev/null
SOSTLE_NOW=2026-05-12T10:30:00Z "$sostle" trial spiral TRB-CHAOS-001 \
  --falco "$here/evidence/falco.jsonl" --trivy "$here/evidence/trivy.json" \
  --events "$here/evidence/events.json" --live - < "$work/live-pod.yaml"
SOSTLE_NOW=2026-05-12T11:00:00Z "$sostle" trial verdict TRB-CHAOS-001

phase "lock, attached to the image in its registry"
"$sostle" key generate --out "$work/keys" > /dev/null
SOSTLE_NOW=2026-05-12T11:00:00Z "$sostle" lock TRB-CHAOS-001 --key "$work/keys/cosign.key" \
  --out "$work/profiles" --attach --insecure-registry "$reg" > /dev/null

phase "promote to L2, pinned to the digest the trial ran"
SOSTLE_NOW=2026-05-12T11:05:00Z "$sostle" promote "$work/deployment.yaml" --to L2 --profile profile-001 \
  -o json > "$work/promoted.json"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["items"][0]["spec"]["template"]["spec"]["containers"][0]["image"])' "$work/promoted.json"

phase "the door: the webhook reads locks from the registry (no --profiles)"
cp "$work/keys/cosign.pub" "$work/lock.pub"
printf 'apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nlocks:\n  keys: [lock.pub]\nimages:\n  registries:\n    insecure: ["%s"]\nsuite:\n  policies:\n    deny_no_mecipol_image:\n      layers: [L2-L7]   # judged from the seed'"'"'s L2 target on, to show it\n' "$reg" > "$work/sostle.yaml"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tls.key" -out "$work/tls.pem" \
  -days 1 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2> /dev/null
port=$(free_port)
"$sostle" webhook --listen "127.0.0.1:$port" --tls-cert "$work/tls.pem" --tls-key "$work/tls.key" \
  --config "$work/sostle.yaml" 2> "$work/webhook.log" &
pids="$pids $!"
for _ in $(seq 50); do curl -skf "https://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done
review() { # review IMAGE: the AdmissionReview of the promoted Deployment running IMAGE
  python3 - "$work/promoted.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["items"][0]
if sys.argv[2] != "-":
    d["spec"]["template"]["spec"]["containers"][0]["image"] = sys.argv[2]
    d["metadata"]["annotations"]["mecipol-image"] = sys.argv[2]
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "registry-cycle", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
    "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
    "namespace": d["metadata"]["namespace"], "operation": "CREATE",
    "userInfo": {"username": "ci"}, "object": d}}))
PY
}
decide() {
  review "$1" | curl -sk "https://127.0.0.1:$port/validate/L2" -H 'Content-Type: application/json' --data-binary @- \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["response"]; print("allowed" if r["allowed"] else "denied: " + r["status"]["message"])'
}
echo "promoted workload:  $(decide -)"
python3 "$root/scripts/oci-image.py" "$work/v145" "mefine-static day98-v145" day98-v145
skopeo copy --quiet --dest-tls-verify=false "oci:$work/v145:day98-v145" "docker://$reg/mefine-static:day98-v145"
echo "an unlocked image:  $(decide "$reg/mefine-static:day98-v145")"
