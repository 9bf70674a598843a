#!/usr/bin/env sh
# Memory under the two attacks of issue #24, for one or more sostle binaries side by side:
#  1. an alias bomb: a 10 KB YAML file whose anchored 10,000-character string is referenced 9
#     times per level over 5 levels (590 MB of text once expanded): `sostle test FILE`'s peak
#     RSS and time, under a 4 GiB address-space limit so an unbounded binary cannot take the
#     machine down;
#  2. stalled bodies: 150 TLS connections to `sostle webhook` that each send all but the last
#     byte of a 3 MiB body; the server's peak RSS (VmHWM) and how long the connections are held.
# Usage: scripts/bench-door-bounds.sh BINARY...   (e.g. target/release/sostle /tmp/sostle-old)
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/bomb.yaml" <<'PY'
import sys
s = 'a0: &a0 "%s"\n' % ("x" * 10000)
for i in range(1, 6):
    s += "a%d: &a%d [%s]\n" % (i, i, ", ".join(["*a%d" % (i - 1)] * 9))
open(sys.argv[1], "w").write(s)
PY
echo "alias bomb: $(wc -c < "$work/bomb.yaml") bytes"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
for bin in "$@"; do
  rc=0
  (ulimit -v 4194304; exec /usr/bin/time -o "$work/time" -f "%M KB peak RSS, %e s" "$bin" test "$work/bomb.yaml" >"$work/out" 2>"$work/err") || rc=$?
  out="$(cat "$work/time" | tail -1), exit $rc; $(grep -o 'error.*' "$work/out" | head -1 | cut -c1-120)"
  echo "$bin: alias bomb: $out"
  "$bin" webhook --listen 127.0.0.1:18543 --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" 2>"$work/webhook.log" &
  pid=$!
  sleep 1
  start=$(date +%s)
  python3 crates/sostle/tests/it/helpers/slow_client.py stall 18543 150 > "$work/stall.txt"
  held=$(awk '{print $1}' "$work/stall.txt" | sort -n | tail -1)
  codes=$(awk '{print $3}' "$work/stall.txt" | sort | uniq -c | tr '\n' ' ')
  hwm=$(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)
  echo "$bin: 150 stalled bodies: server peak RSS $hwm; longest held ${held} s; answers: $codes; wall $(( $(date +%s) - start )) s"
  kill $pid; wait $pid 2>/dev/null || true
done
