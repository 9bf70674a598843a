#!/usr/bin/env bash
# Memory and time of `sostle test` as the input grows (issue #16): the corpus once and N times
# (copies in a temporary directory), every output format, in one run. Prints wall time and peak
# RSS (GNU time's %M) per format at 1× and N× (fastest and largest of RUNS=3 runs each), and the
# ratios.
#
#   scripts/bench-scale.sh [N=40] [formats…]
#
# Builds the release binary first. Needs /usr/bin/time (Debian's `time` package).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-40}
shift || true
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(human json junit sarif tap github policyreport)
cargo build --release --locked -q
bin=target/release/sostle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$n"); do cp -r ../shared/corpus "$work/c$i"; done
echo "corpus: $(du -sh ../shared/corpus | cut -f1) once, $(du -sh "$work" | cut -f1) at ${n}x"
runs=${RUNS:-3}
measure() { # format dir -> "seconds kib": the fastest of $runs runs, the largest peak RSS
  for _ in $(seq 1 "$runs"); do
    start=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$work/t" "$bin" test --hidden -o "$1" "$2" > /dev/null 2>&1 || true
    end=$(date +%s%N)
    echo "$(( (end - start) / 1000 ))e-6 $(tail -n 1 "$work/t")"
  done | awk 'NR == 1 || $1 + 0 < t { t = $1 + 0 } $2 > m { m = $2 } END { print t, m }'
}
printf '%-13s %9s %9s %10s %10s %8s %8s\n' format "1x s" "${n}x s" "1x MiB" "${n}x MiB" "time×" "RSS×"
for f in "${formats[@]}"; do
  read -r t1 m1 < <(measure "$f" ../shared/corpus)
  read -r tn mn < <(measure "$f" "$work")
  awk -v f="$f" -v t1="$t1" -v tn="$tn" -v m1="$m1" -v mn="$mn" -v n="$n" 'BEGIN {
    printf "%-13s %9.3f %9.3f %10.1f %10.1f %8.1f %8.2f\n", f, t1, tn, m1/1024, mn/1024, tn/t1, mn/m1 }'
done
