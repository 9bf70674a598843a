#!/usr/bin/env sh
# Instructions per AdmissionReview for the webhook's decode and for its validation, counted by
# callgrind over all 432 corpus Deployment reviews (the bodies scripts/bench-webhook.sh posts).
# Unlike times, the counts repeat exactly on this shared machine, so small changes can be
# judged. Needs valgrind. Usage: scripts/instructions-webhook.sh
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release -q -p sostle-webhook --examples
target/release/examples/admission_bodies ../shared/corpus > "$work/bodies.jsonl" 2>/dev/null
n=$(wc -l < "$work/bodies.jsonl")
for mode in none decode full router-idle router; do
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$mode" \
    target/release/examples/handler_once "$work/bodies.jsonl" "$mode" 2>&1 >/dev/null |
    awk -v m="$mode" '/Collected/ {print m, $4}'
done | awk -v n="$n" '{v[$1] = $2} END {
  printf "%d reviews: decode %.0f instructions per review, validate %.0f more, the rest of the router (routing, metrics, answer) %.0f more\n", n, (v["decode"] - v["none"]) / n, (v["full"] - v["decode"]) / n, (v["router"] - v["router-idle"] - (v["full"] - v["none"])) / n }'
