#!/usr/bin/env sh
# Image signatures at the door, measured: the corpus Deployments as AdmissionReviews to
# /validate/L3 with their images replaced by images pushed to a real registry on loopback
# (Debian's docker-registry) and signed with `sostle sign`, against three servers in one run:
#   unsigned — no `images` config (the baseline: no signature work at all),
#   signed   — signatures required at L3, verdict cache warm (TTL 300 s),
#   cold     — signatures required, cache TTL 0: every review resolves the tag, fetches the
#              signature manifest and payload, and verifies (the first review of a digest).
# Reports requests/s, p50 and p99 at ~1,000 requests/s (cold: one connection, 10 ms between
# requests), and saturation beside
# /healthz over ROUNDS alternating rounds (best of 16/32/64 connections, median ratio).
# Needs wrk, openssl, docker-registry, skopeo, python3 (Debian: wrk docker-registry skopeo).
# Usage: scripts/bench-webhook-signed.sh [seconds per run] [rounds] [images]
set -eu
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
nimages=${3:-32}
work=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null || true; done; rm -rf "$work"' EXIT
cargo build --release -q -p sostle -p sostle-webhook --bins --examples
sostle=target/release/sostle

# The registry, and the images: one tiny distinct image per tag, each signed.
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: 127.0.0.1:15000}
EOF
docker-registry serve "$work/registry.yml" 2> "$work/registry.log" &
pids="$pids $!"
sleep 1
reg=127.0.0.1:15000
export COSIGN_PASSWORD=bench DOCKER_CONFIG="$work/docker"
mkdir -p "$DOCKER_CONFIG" && echo '{"auths":{}}' > "$DOCKER_CONFIG/config.json"
$sostle key generate --out "$work/keys" > /dev/null
i=0
while [ $i -lt "$nimages" ]; do
  python3 scripts/oci-image.py "$work/layout$i" "image $i" v1
  skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout$i:v1" "docker://$reg/bench/app$i:v1"
  $sostle sign "$reg/bench/app$i:v1" --key "$work/keys/cosign.key" --insecure-registry $reg > /dev/null
  i=$((i + 1))
done
echo "== $nimages images pushed to $reg and signed"

# The same bodies for all three servers: every container's image is one of the signed ones.
target/release/examples/admission_bodies ../shared/corpus > "$work/corpus.jsonl"
python3 - "$work" "$nimages" "$reg" <<'PY'
import json, sys
work, n, reg = sys.argv[1], int(sys.argv[2]), sys.argv[3]
k = 0
def walk(o):
    global k
    if isinstance(o, dict):
        for key, v in o.items():
            if key in ("containers", "initContainers", "ephemeralContainers") and isinstance(v, list):
                for c in v:
                    if isinstance(c, dict):
                        c["image"] = f"{reg}/bench/app{k % n}:v1"; k += 1
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
with open(f"{work}/bodies.jsonl", "w") as out:
    for line in open(f"{work}/corpus.jsonl"):
        r = json.loads(line); walk(r["request"]["object"]); out.write(json.dumps(r, separators=(",", ":")) + "\n")
PY
echo "== $(wc -l < "$work/bodies.jsonl") reviews"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
cp "$work/keys/cosign.pub" "$work/release.pub"
config() {
  printf 'apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\nimages:\n  signers:\n    - name: release\n      key: release.pub\n  require:\n    L3: [release]\n  registries:\n    insecure: ["%s"]\n  cache:\n    ttlSeconds: %s\n' "$reg" "$1"
}
config 300 > "$work/signed.yaml"
config 0 > "$work/cold.yaml"
printf 'apiVersion: sostle.eose.ca/v1\nkind: SostleConfig\n' > "$work/unsigned.yaml"
port=18450
for name in unsigned signed cold; do
  $sostle webhook --listen 127.0.0.1:$port --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
    --config "$work/$name.yaml" --log-format json 2> "$work/$name.log" &
  pids="$pids $!"
  eval "pid_$name=$!; port_$name=$port"
  port=$((port + 1))
done
sleep 1

cp scripts/validate-post.lua "$work/post.lua"
run() {
  label=$1; shift
  wrk "$@" 2>&1 | awk -v label="$label" '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    END { printf "%-30s %9.0f req/s  p50 %-8s p99 %s\n", label, rps, p50, p99 }'
}
url() { eval "echo https://127.0.0.1:\$port_$1"; }
# Warm the signed server's cache, and check the verdicts are what the bench claims.
wrk -t1 -c4 -d2s -s "$work/post.lua" "$(url signed)" -- "$work/bodies.jsonl" 0 > /dev/null
curl -sk "$(url signed)/metrics" | grep -E '^sostle_webhook_image_verifications_total' || true

echo "== /validate/L3 at ~1,000 requests/s (10 connections, 10 ms apart); cold: 1 connection"
run "unsigned @1000/s" -t1 -c10 -d"${secs}s" --latency -s "$work/post.lua" "$(url unsigned)" -- "$work/bodies.jsonl" 10
run "signed, warm @1000/s" -t1 -c10 -d"${secs}s" --latency -s "$work/post.lua" "$(url signed)" -- "$work/bodies.jsonl" 10
run "signed, cold (1 conn, 10 ms gaps)" -t1 -c1 -d"${secs}s" --latency -s "$work/post.lua" "$(url cold)" -- "$work/bodies.jsonl" 10
echo "== saturation beside /healthz (best of 16/32/64 connections per route, per round)"
: > "$work/r_unsigned"; : > "$work/r_signed"
i=0
while [ $i -lt "$rounds" ]; do
  i=$((i + 1))
  for name in unsigned signed; do
    hbest=0; vbest=0
    for c in 16 32 64; do
      h=$(run "$name healthz c$c" -t1 -c$c -d"${secs}s" --latency "$(url $name)/healthz")
      v=$(run "$name validate c$c" -t1 -c$c -d"${secs}s" --latency -s "$work/post.lua" "$(url $name)" -- "$work/bodies.jsonl" 0)
      hbest=$(echo "$h" | awk -v b="$hbest" '{r = $(NF-5); print (r > b ? r : b)}')
      vbest=$(echo "$v" | awk -v b="$vbest" '{r = $(NF-5); print (r > b ? r : b)}')
    done
    awk -v h="$hbest" -v v="$vbest" 'BEGIN { printf "%.3f\n", v / h }' >> "$work/r_$name"
    echo "   round $i $name: healthz $hbest, validate $vbest req/s; ratio $(tail -1 "$work/r_$name")"
  done
done
med() { sort -n "$1" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "== median validate / healthz: unsigned $(med "$work/r_unsigned"), signed (warm) $(med "$work/r_signed")"
curl -sk "$(url signed)/metrics" | grep -E '^sostle_webhook_image_(verifications|cache)_total' || true
for name in unsigned signed cold; do
  eval "p=\$pid_$name"
  echo "== $name server memory: $(grep -E 'VmHWM' /proc/$p/status)"
done
