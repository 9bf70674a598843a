#!/usr/bin/env sh
# Loads `sostle webhook` over HTTPS on loopback with wrk: AdmissionReviews of every corpus
# Deployment to /validate/L3, at ~1,000 requests/s and at saturation, beside the same server's
# /healthz as the ceiling; then prints the server's peak resident memory. Saturation is a
# route's best throughput over 16, 32 and 64 connections (the same for both routes); it is
# measured ROUNDS times, the routes alternating, because this machine is shared and one run can
# be off by 10-20%: each round prints its ratio, and the median is the result.
# Server and wrk CPU per request come from /proc and time(1).
# Needs wrk and openssl (Debian: apt-get install wrk).
# Usage: scripts/bench-webhook.sh [seconds per run] [rounds] [extra `sostle webhook` flags...]
# SOSTLE_BIN=path runs that binary (another build, to compare) instead of target/release/sostle.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release -q -p sostle -p sostle-webhook --bins --examples
target/release/examples/admission_bodies ../shared/corpus > "$work/bodies.jsonl"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
"${SOSTLE_BIN:-target/release/sostle}" webhook --listen 127.0.0.1:18443 --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
  --log-format json "$@" 2> "$work/webhook.log" &
pid=$!
sleep 1
cp scripts/validate-post.lua "$work/post.lua"
ticks=$(getconf CLK_TCK)
# run LABEL wrk-args...: one wrk run; prints requests/s, p50, p99 and CPU per request.
run() {
  label=$1; shift
  cpu0=$(awk '{print $14 + $15}' /proc/$pid/stat)
  out=$( { /usr/bin/time -f "WRKCPU %U %S" wrk "$@"; } 2>&1 )
  cpu1=$(awk '{print $14 + $15}' /proc/$pid/stat)
  echo "$out" | awk -v label="$label" -v s=$((cpu1 - cpu0)) -v t="$ticks" '
    /requests in/ { n = $1 }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 }
    /^ +99%/ { p99 = $2 }
    /WRKCPU/ { w = $2 + $3 }
    END { printf "%-34s %9.0f req/s  p50 %-8s p99 %-8s server %5.1f us/req  wrk %5.1f us/req\n", label, rps, p50, p99, s / t / n * 1e6, w / n * 1e6 }'
}
url=https://127.0.0.1:18443
echo "== /validate/L3 at ~1,000 requests/s (10 connections, 10 ms between requests each)"
run "validate @1000/s" -t1 -c10 -d"${secs}s" --latency -s "$work/post.lua" $url -- "$work/bodies.jsonl" 10
echo "== saturation: /healthz (the ceiling) and /validate/L3 at 16, 32 and 64 connections; each"
echo "   route's saturation is its best of the three (the ceiling too), per round"
: > "$work/ratios"
i=0
while [ $i -lt "$rounds" ]; do
  i=$((i + 1))
  hbest=0; vbest=0
  for c in 16 32 64; do
    h=$(run "healthz c$c (round $i)" -t1 -c$c -d"${secs}s" --latency $url/healthz)
    v=$(run "validate c$c (round $i)" -t1 -c$c -d"${secs}s" --latency -s "$work/post.lua" $url -- "$work/bodies.jsonl" 0)
    echo "$h"; echo "$v"
    hbest=$(echo "$h" | awk -v b="$hbest" '{r = $(NF-11); print (r > b ? r : b)}')
    vbest=$(echo "$v" | awk -v b="$vbest" '{r = $(NF-11); print (r > b ? r : b)}')
  done
  awk -v h="$hbest" -v v="$vbest" 'BEGIN { printf "%.3f\n", v / h }' >> "$work/ratios"
  echo "   round $i: healthz $hbest, validate $vbest req/s; validate / healthz: $(tail -1 "$work/ratios")"
done
echo "== median validate / healthz over $rounds rounds: $(sort -n "$work/ratios" | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')"
echo "== server memory"
grep -E "VmHWM|VmRSS" /proc/$pid/status
