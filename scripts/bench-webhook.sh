#!/usr/bin/env sh
# Loads `sostle webhook` over HTTPS on loopback with wrk: AdmissionReviews of every corpus
# Deployment to /validate/L3, at ~1,000 requests/s and at saturation, beside the same server's
# /healthz as the ceiling; then prints the server's peak resident memory. Needs wrk and openssl
# (Debian: apt-get install wrk). Usage: scripts/bench-webhook.sh [seconds per run]
set -eu
cd "$(dirname "$0")/.."
secs=${1:-15}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release -q -p sostle -p sostle-webhook --bins --examples
target/release/examples/admission_bodies ../shared/corpus > "$work/bodies.jsonl"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
target/release/sostle webhook --listen 127.0.0.1:18443 --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
  --log-format json 2> "$work/webhook.log" &
pid=$!
sleep 1
cat > "$work/post.lua" <<'LUA'
local bodies, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  rate_delay = tonumber(args[2] or "0")
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/validate/L3", {["Content-Type"] = "application/json"}, bodies[i])
end
function delay() return rate_delay end
LUA
echo "== /healthz at saturation (the ceiling)"
wrk -t1 -c16 -d"${secs}s" --latency https://127.0.0.1:18443/healthz | grep -E "Latency|50%|99%|Requests/sec"
echo "== /validate/L3 at ~1,000 requests/s (10 connections, 10 ms between requests each)"
wrk -t1 -c10 -d"${secs}s" --latency -s "$work/post.lua" https://127.0.0.1:18443 -- "$work/bodies.jsonl" 10 | grep -E "Latency|50%|99%|Requests/sec"
echo "== /validate/L3 at saturation"
wrk -t1 -c16 -d"${secs}s" --latency -s "$work/post.lua" https://127.0.0.1:18443 -- "$work/bodies.jsonl" 0 | grep -E "Latency|50%|99%|Requests/sec"
echo "== server memory"
grep -E "VmHWM|VmRSS" /proc/$pid/status
