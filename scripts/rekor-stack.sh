#!/usr/bin/env bash
# A real Rekor on loopback for the tests: MariaDB (Debian's), Trillian's log server and signer,
# and rekor-server, all built or installed by scripts/test.sh, state in DIR.
#
#   scripts/rekor-stack.sh start DIR   # prints the Rekor URL; writes DIR/rekor.url, DIR/rekor.pub
#   scripts/rekor-stack.sh stop DIR
#
# Ports are chosen free at start. Needs: mariadbd, mariadb-install-db, mariadb (client),
# trillian_log_server, trillian_log_signer, rekor-server on PATH, and Trillian's MySQL schema
# (found in the Go module cache).
set -euo pipefail
cmd=${1:?start|stop}
dir=${2:?DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

stop() {
  if [ -f "$dir/pids" ]; then
    while read -r p; do kill "$p" 2>/dev/null || true; done < "$dir/pids"
    sleep 0.5
    while read -r p; do kill -9 "$p" 2>/dev/null || true; done < "$dir/pids"
    rm -f "$dir/pids"
  fi
}
if [ "$cmd" = stop ]; then stop; exit 0; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_for() { # wait_for WHAT SECONDS CMD...
  local what=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "rekor-stack: $what did not come up; logs in $dir" >&2
  tail -n 20 "$dir"/*.log >&2 || true
  stop
  exit 1
}

: > "$dir/pids"
db_port=$(free_port)
sock="$dir/mysql.sock"
mariadb-install-db --no-defaults --datadir="$dir/db" --user="$(id -un)" --auth-root-authentication-method=normal \
  --skip-test-db > "$dir/install-db.log" 2>&1
mariadbd --no-defaults --datadir="$dir/db" --socket="$sock" --port="$db_port" --bind-address=127.0.0.1 \
  --user="$(id -un)" --skip-name-resolve --innodb-buffer-pool-size=32M > "$dir/mariadb.log" 2>&1 &
echo $! >> "$dir/pids"
wait_for MariaDB 30 mariadb --no-defaults -S "$sock" -uroot -e 'SELECT 1'
schema=$(go env GOMODCACHE)/github.com/google/trillian@v1.7.3/storage/mysql/schema/storage.sql
mariadb --no-defaults -S "$sock" -uroot <<SQL
CREATE DATABASE trillian;
CREATE DATABASE rekor;
CREATE USER 'test'@'127.0.0.1' IDENTIFIED BY 'zaphod';
GRANT ALL ON trillian.* TO 'test'@'127.0.0.1';
GRANT ALL ON rekor.* TO 'test'@'127.0.0.1';
SQL
mariadb --no-defaults -S "$sock" -uroot trillian < "$schema"

dsn="test:zaphod@tcp(127.0.0.1:$db_port)"
rpc=$(free_port); http=$(free_port); srpc=$(free_port); shttp=$(free_port); rekor=$(free_port)
trillian_log_server --storage_system=mysql --mysql_uri="$dsn/trillian" --rpc_endpoint="127.0.0.1:$rpc" \
  --http_endpoint="127.0.0.1:$http" --alsologtostderr > "$dir/trillian-server.log" 2>&1 &
echo $! >> "$dir/pids"
trillian_log_signer --storage_system=mysql --mysql_uri="$dsn/trillian" --rpc_endpoint="127.0.0.1:$srpc" \
  --http_endpoint="127.0.0.1:$shttp" --force_master --sequencer_interval=100ms --batch_size=100 \
  --alsologtostderr > "$dir/trillian-signer.log" 2>&1 &
echo $! >> "$dir/pids"
wait_for "Trillian" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$rpc"
rekor-server serve --rekor_server.address=127.0.0.1 --port="$rekor" \
  --trillian_log_server.address=127.0.0.1 --trillian_log_server.port="$rpc" \
  --rekor_server.signer=memory --search_index.storage_provider=mysql \
  --search_index.mysql.dsn="$dsn/rekor" --enable_attestation_storage=false \
  --enabled_api_endpoints=getLogInfo,getPublicKey,createLogEntry,getLogEntryByIndex,getLogEntryByUUID \
  > "$dir/rekor.log" 2>&1 &
echo $! >> "$dir/pids"
url="http://127.0.0.1:$rekor"
wait_for "rekor-server" 60 curl -sf "$url/api/v1/log/publicKey" -o "$dir/rekor.pub"
echo "$url" > "$dir/rekor.url"
echo "$url"
