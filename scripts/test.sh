#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs them.
#
#   scripts/test.sh [cargo test args…]
#
# Needs: Rust (cargo), Go (for the Go-built peers: helm, kustomize, cosign, conftest, rekor-server,
# Trillian, kube-apiserver, kubectl, etcd), openssl, curl and git; installs (apt) the
# Debian packages docker-registry, skopeo, apache2-utils, mariadb-server and postgresql when
# missing. The peers are built
# from the Go module proxy at pinned versions into $SOSTLE_TEST_BIN (default
# ~/.cache/sostle/bin) and reused while their version matches; Go's build cache keeps rebuilds
# short. Tests find them on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

# Go as the machine installs it, when a non-login shell has not put it on PATH.
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "test setup: Go is needed to build helm, kustomize, cosign, conftest, rekor-server, Trillian, kube-apiserver, kubectl and etcd" >&2; exit 1; }

bin=${SOSTLE_TEST_BIN:-$HOME/.cache/sostle/bin}
mkdir -p "$bin"

# Helm's release builds stamp the Kubernetes version its client-go speaks (v0.37 → 1.37) and
# its own version with -ldflags (its Makefile); without them `helm template` assumes 1.20 and
# refuses charts that need newer, so the same flags are given here.
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=v3.22.0"
for pkg in pkg/lint/rules pkg/chartutil; do
  helm_ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
done

# name | module@version | version stamp | -ldflags
peers=(
  "helm|helm.sh/helm/v3/cmd/helm@v3.22.0|v3.22.0-k1.37|$helm_ldflags"
  "kustomize|sigs.k8s.io/kustomize/kustomize/v5@v5.7.1|v5.7.1|"
  "cosign|github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5|v2.6.5|"
  "conftest|github.com/open-policy-agent/conftest@v0.71.1|v0.71.1|"
  "rekor-server|github.com/sigstore/rekor/cmd/rekor-server@v1.5.4|v1.5.4|"
  "trillian_log_server|github.com/google/trillian/cmd/trillian_log_server@v1.7.3|v1.7.3|"
  "trillian_log_signer|github.com/google/trillian/cmd/trillian_log_signer@v1.7.3|v1.7.3|"
)
for p in "${peers[@]}"; do
  IFS='|' read -r name module version ldflags <<<"$p"
  stamp="$bin/.$name.version"
  if [ -x "$bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    continue
  fi
  echo "test setup: building $name $version from the Go module proxy" >&2
  GOBIN="$bin" GOFLAGS=-buildvcs=false go install -ldflags "$ldflags" "$module"
  echo "$version" > "$stamp"
done

# A real control plane for the webhook tests (crates/sostle/tests/it/cluster.rs): kube-apiserver
# and kubectl from k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3, built from the wrapper
# module tools/k8s-peers — the kubernetes module's replace directives point into its own staging
# tree, so the wrapper pins each k8s.io/* staging module to its published v0.37.x — with the
# version stamps the kubernetes build sets (else the server reports v0.0.0).
k8s_version=v1.37.2
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
done
if [ ! -x "$bin/kube-apiserver" ] || [ ! -x "$bin/kubectl" ] || [ ! -x "$bin/etcd" ] \
   || [ "$(cat "$bin/.k8s-peers.version" 2>/dev/null)" != "$k8s_version" ]; then
  echo "test setup: building kube-apiserver, kubectl and etcd ($k8s_version) from the Go module proxy" >&2
  (cd tools/k8s-peers && GOFLAGS="-buildvcs=false -mod=mod" GOBIN="$bin" \
     go install -ldflags "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl ./etcd)
  echo "$k8s_version" > "$bin/.k8s-peers.version"
fi

# Trillian's MySQL schema, read by scripts/rekor-stack.sh from the module cache (present after a
# build, but the binaries may be cached without it).
GOFLAGS=-buildvcs=false go mod download github.com/google/trillian@v1.7.3 >/dev/null
# conftest's own examples (examples/kubernetes), which the parity tests read in place from the
# module cache (never copied into this repository).
GOFLAGS=-buildvcs=false go mod download github.com/open-policy-agent/conftest@v0.71.1 >/dev/null

# Debian packages the tests run: a real OCI registry (distribution 2.8), skopeo to push images
# into it and to read signatures independently, htpasswd for the registry's basic auth, MariaDB
# for the Trillian log behind the test Rekor (scripts/rekor-stack.sh), PostgreSQL for the shared
# ledger.
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
# PostgreSQL's server programs for the shared-ledger tests (initdb/pg_ctl into a temporary
# directory, on a loopback port; crates/sostle-test-support/src/postgres.rs).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "test setup: installing ${need[*]} (apt)" >&2
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y --no-install-recommends "${need[@]}" >/dev/null \
    || { DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update >/dev/null && \
         DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi

# Python's cryptography (the token service in front of the test registry) and securesystemslib
# (the reference DSSE implementation, an independent check of attestations), from PyPI when the
# python3 on PATH lacks them.
for py in cryptography securesystemslib==1.6.0; do
  if ! python3 -c "import ${py%%==*}" 2>/dev/null; then
    echo "test setup: installing Python $py (pip)" >&2
    python3 -m pip install --quiet --user "$py" \
      || python3 -m pip install --quiet --user --break-system-packages "$py"
  fi
done

export PATH="$PATH:/usr/sbin"
for tool in openssl curl git docker-registry skopeo htpasswd mariadbd mariadb-install-db; do
  command -v "$tool" >/dev/null || { echo "test setup: $tool is needed" >&2; exit 1; }
done

# The house rules of crates/README.md (the binary's size, long functions, import circles,
# Result<_, String> in libraries): broken, the run stops before the tests.
python3 scripts/house.py --quiet

export PATH="$bin:$PATH"
exec cargo test --workspace --locked "$@"
