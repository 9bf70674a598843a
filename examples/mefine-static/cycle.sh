#!/usr/bin/env sh
# The seed's P1 and P2, end to end on the embedded ledger: run mefine-static (three known
# violations) through a trial, file TRB-CHAOS-001, fix it, re-try as TRB-CHAOS-002, ingest the
# evidence, reach the verdict, lock the image with a signed MECIPOL profile, promote to L2.
#
#   examples/mefine-static/cycle.sh [path/to/sostle]
#
# The ledger, keys and profiles live in a fresh temporary directory (SOSTLE_LEDGER points
# there, unless it is set: `SOSTLE_LEDGER=postgres://… cycle.sh` runs the cycle on a shared
# PostgreSQL ledger); the clock is fixed with SOSTLE_NOW so the run is the same every time.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
sostle=${1:-$root/target/release/sostle}
case $sostle in /*) ;; *) sostle=$(pwd)/$sostle ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$root"
here=examples/mefine-static
export SOSTLE_LEDGER="${SOSTLE_LEDGER:-$work/ledger.db}"
# The signing key is cosign's encrypted format; its password comes from COSIGN_PASSWORD, as with
# cosign (this throwaway key gets a fixed one unless you set your own).
export COSIGN_PASSWORD="${COSIGN_PASSWORD-mefine-static-demo}"
phase() { printf '\n== %s\n' "$*"; }

phase "charge mefine-static (Day 97) against L2: TRB-CHAOS-001"
SOSTLE_NOW=2026-05-11T09:00:00Z "$sostle" trial charge "$here/deployment.yaml" --target L2
phase "verdict on TRB-CHAOS-001"
SOSTLE_NOW=2026-05-11T09:05:00Z "$sostle" trial verdict TRB-CHAOS-001 || true

phase "fix it and re-try: TRB-CHAOS-002"
SOSTLE_NOW=2026-05-11T10:00:00Z "$sostle" trial charge "$here/fixed/deployment.yaml" --target L2
phase "burst TRB-CHAOS-002 onto the chaos pool (kubectl apply -f - would take this)"
SOSTLE_NOW=2026-05-11T10:05:00Z "$sostle" trial burst TRB-CHAOS-002
phase "spiral: Falco, Trivy, events, live pod spec"
SOSTLE_NOW=2026-05-12T10:30:00Z "$sostle" trial spiral TRB-CHAOS-002 \
  --falco "$here/evidence/falco.jsonl" --trivy "$here/evidence/trivy.json" \
  --events "$here/evidence/events.json" --live - < "$here/evidence/live-pod.yaml"
phase "verdict on TRB-CHAOS-002 (25 hours after burst)"
SOSTLE_NOW=2026-05-12T11:00:00Z "$sostle" trial verdict TRB-CHAOS-002

phase "lock: a signed MECIPOL profile"
"$sostle" key generate --out "$work/keys" > /dev/null
SOSTLE_NOW=2026-05-12T11:00:00Z "$sostle" lock TRB-CHAOS-002 --key "$work/keys/cosign.key" --out "$work/profiles"
phase "verify the profile's signature with openssl"
base64 -d "$work/profiles/profile-001.json.sig" > "$work/profile-001.sig.der"
openssl dgst -sha256 -verify "$work/keys/cosign.pub" -signature "$work/profile-001.sig.der" "$work/profiles/profile-001.json"
phase "promote to L2 (sostle-l2-local)"
SOSTLE_NOW=2026-05-12T11:05:00Z "$sostle" promote "$here/fixed/deployment.yaml" --to L2 --profile profile-001
phase "the promoted manifest passes its layer's suite (with the ledger in use)"
SOSTLE_NOW=2026-05-12T11:05:00Z "$sostle" promote "$here/fixed/deployment.yaml" --to L2 --profile profile-001 \
  | "$sostle" test --now 2026-05-12T11:05:00Z -
phase "the same failure pattern again is known"
SOSTLE_NOW=2026-05-12T11:10:00Z "$sostle" trial charge "$here/deployment.yaml" --target L2 | tail -n 1
phase "the ledger"
SOSTLE_NOW=2026-05-12T11:10:00Z "$sostle" trial list
