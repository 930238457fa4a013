#!/usr/bin/env bash
# A local Citus cluster for `make test-citus`: a coordinator and two workers, each its own PostgreSQL cluster on
# a loopback port (Debian's pg_createcluster; data under /var/lib/postgresql/<major>/citus_*).
#
#   .ci/citus-cluster.sh start    # create what is missing, start, and register the workers (idempotent)
#   .ci/citus-cluster.sh stop
#   .ci/citus-cluster.sh status
#
# Needs the Citus extension installed in the local PostgreSQL: Citus's own packages (docs/scaling.md), or
# ../shared/vendor/citus/build.sh on the CI machine. Fails, never skips, when something is missing.
# The database named by CITUS_DB (default carnet_citus) gets the extension on every node, and the coordinator
# knows its workers there; tests/conftest.py reads that list to build the test database on every node.
set -euo pipefail

major=${PG_MAJOR:-$(ls /usr/lib/postgresql | sort -n | tail -n1)}
coord_port=${CITUS_COORDINATOR_PORT:-5433}
worker_ports=(${CITUS_WORKER_PORTS:-5434 5435})
db=${CITUS_DB:-carnet_citus}
host=127.0.0.1

name_of() {  # cluster name of a port
  if [ "$1" = "$coord_port" ]; then echo citus_coord; else echo "citus_w$1"; fi
}

all_ports() { echo "$coord_port" "${worker_ports[@]}"; }

psql_on() {  # port database sql...
  local port=$1 database=$2
  shift 2
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U postgres -d "$database" "$@"
}

create_missing() {
  if [ ! -f "/usr/lib/postgresql/$major/lib/citus.so" ]; then
    echo "Citus is not installed in PostgreSQL $major: install Citus's package (docs/scaling.md) or run build.sh"
    exit 1
  fi
  for port in $(all_ports); do
    local name
    name=$(name_of "$port")
    if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$name"; then
      pg_createcluster "$major" "$name" -p "$port" --start-conf=manual -- \
        --auth-local=trust --auth-host=trust >/dev/null
      conf=/etc/postgresql/$major/$name/conf.d/citus.conf
      # A throw-away test cluster: durability traded for speed (fsync off), like an in-memory database.
      cat >"$conf" <<EOF
listen_addresses = '$host'
port = $port
shared_preload_libraries = 'citus'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = logical
max_prepared_transactions = 200
shared_buffers = 128MB
EOF
    fi
  done
}

start() {
  create_missing
  for port in $(all_ports); do
    local name
    name=$(name_of "$port")
    if ! pg_isready -h "$host" -p "$port" -q; then
      pg_ctlcluster --skip-systemctl-redirect "$major" "$name" start
    fi
  done
  for port in $(all_ports); do
    for _ in $(seq 30); do pg_isready -h "$host" -p "$port" -q && break; sleep 1; done
    pg_isready -h "$host" -p "$port" -q || { echo "Citus node on port $port does not start"; exit 1; }
  done
  for port in $(all_ports); do
    if [ -z "$(psql_on "$port" postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      psql_on "$port" postgres -c "CREATE DATABASE $db"
    fi
    psql_on "$port" "$db" -c "CREATE EXTENSION IF NOT EXISTS citus"
  done
  psql_on "$coord_port" "$db" -c "SELECT citus_set_coordinator_host('$host', $coord_port)" >/dev/null
  for port in "${worker_ports[@]}"; do
    if [ -z "$(psql_on "$coord_port" "$db" -tAc "SELECT 1 FROM pg_dist_node WHERE nodeport = $port")" ]; then
      psql_on "$coord_port" "$db" -c "SELECT citus_add_node('$host', $port)" >/dev/null
    fi
  done
  status
}

stop() {
  for port in $(all_ports); do
    local name
    name=$(name_of "$port")
    if pg_lsclusters -h | awk '{print $2}' | grep -qx "$name"; then
      pg_ctlcluster --skip-systemctl-redirect "$major" "$name" stop || true
    fi
  done
}

status() {
  for port in $(all_ports); do
    pg_isready -h "$host" -p "$port" -q || { echo "citus: node on port $port is down"; return 1; }
  done
  psql_on "$coord_port" "$db" -tAc \
    "SELECT 'citus ' || extversion FROM pg_extension WHERE extname = 'citus'
     UNION ALL SELECT format('node %s:%s (group %s)', nodename, nodeport, groupid) FROM pg_dist_node"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status"; exit 2 ;;
esac
