# Sourced by tests/test.sh and tests/demo.sh: installs what a fresh Debian 12 machine (as root)
# lacks to build and run cyberbiz_fdw against PostgreSQL 15. Idempotent; fast when done before.
set -euo pipefail

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGRX_VERSION=0.18.1
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\n==> %s\n' "$*" >&2; }

need_apt=()
EXTRA_PACKAGES=${EXTRA_PACKAGES:-}
for pkg in postgresql-15 postgresql-15-cron postgresql-server-dev-15 libclang-dev clang pkg-config libssl-dev sudo curl ca-certificates build-essential $EXTRA_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  log "installing Rust (rustup, stable)"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
for tool in fmt clippy; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    log "installing the Rust component for cargo $tool"
    rustup component add "$([ "$tool" = fmt ] && echo rustfmt || echo clippy)"
  fi
done

if [ "$(cargo pgrx --version 2>/dev/null | awk '{print $2}')" != "$PGRX_VERSION" ]; then
  log "installing cargo-pgrx $PGRX_VERSION (a few minutes, once)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -qs "^pg15 = \"$PG_CONFIG\"" "$HOME/.pgrx/config.toml"; then
  log "pointing pgrx at Debian's PostgreSQL 15"
  cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
fi

# The Debian cluster the regression tests and the demo use.
ensure_cluster() {
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^15 main$"; then
    log "creating the PostgreSQL 15 cluster"
    pg_createcluster 15 main >/dev/null
  fi
  if ! pg_lsclusters -h | awk '$1==15 && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster 15 main start
  fi
}

# Stops the Debian cluster if it runs: a preloaded library is mapped by every process of it, and
# installing over the file (cargo pgrx install and test write it in place) would crash them.
stop_cluster() {
  if pg_lsclusters -h 2>/dev/null | awk '$1==15 && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster 15 main stop
  fi
}

# Builds (release) and installs the extension into Debian's PostgreSQL 15, then restarts the
# cluster so backends load the new library.
install_extension() {
  log "building and installing cyberbiz_fdw (release)"
  stop_cluster
  (cd "$REPO_ROOT" && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
  # The install scripts of earlier releases (cargo pgrx installs the current one and the
  # upgrade scripts), so that CREATE EXTENSION cyberbiz_fdw VERSION '0.1.0' works, as on a
  # machine that had 0.1.0 installed.
  install -m 644 "$REPO_ROOT"/sql/cyberbiz_fdw--*.sql "$("$PG_CONFIG" --sharedir)/extension/"
  ensure_cluster
  # One request budget per API token for the whole cluster (shared memory needs the preload),
  # and pg_cron to schedule replica syncs (jobs connect over the Unix socket, as postgres).
  if [ "$(psql_pg -d postgres -Atc "\"SHOW shared_preload_libraries\"" | tr -d " ")" != "cyberbiz_fdw,pg_cron" ]; then
    psql_pg -d postgres -c "\"ALTER SYSTEM SET shared_preload_libraries = 'cyberbiz_fdw', 'pg_cron'\""
  fi
  # The webhook receiver is configured by those who need it (tests/test.sh, tests/bench.sh), for
  # their database, after they created it (its workers hold a connection to it).
  rm -f /etc/postgresql/15/main/conf.d/cyberbiz_fdw_receiver.conf
  # What a test or benchmark that ended early left (tests/replication.sh, tests/bench.sh shops).
  rm -f /etc/postgresql/15/main/conf.d/cyberbiz_fdw_replication.conf /etc/postgresql/15/main/conf.d/cyberbiz_fdw_shops.conf
  # pg_cron's settings are unknown until it is loaded (ALTER SYSTEM refuses them): a conf.d file.
  printf "cron.database_name = 'postgres'\ncron.host = '/var/run/postgresql'\n" >/etc/postgresql/15/main/conf.d/cyberbiz_fdw_cron.conf
  pg_ctlcluster 15 main restart
}

# Turns on the extension's webhook receiver (a background worker of the preloaded cluster) for
# database DB on a free port: its conf.d file, a restart, and a wait until it answers (its
# /healthz says 503 until the extension exists in DB). Sets RECV_PORT and RECV_URL.
receiver_on() {
  local db=$1
  RECV_PORT=$(( 20000 + RANDOM % 20000 ))
  printf "cyberbiz.webhook_listen = '127.0.0.1:%s'\ncyberbiz.webhook_database = '%s'\n" "$RECV_PORT" "$db" >/etc/postgresql/15/main/conf.d/cyberbiz_fdw_receiver.conf
  # What a test left set by ALTER SYSTEM (it ended early, say) would override the file.
  su postgres -c "psql -X -q -d postgres -c 'ALTER SYSTEM RESET cyberbiz.webhook_listen' -c 'ALTER SYSTEM RESET cyberbiz.sync_interval' -c 'ALTER SYSTEM RESET cyberbiz.webhook_role' -c 'ALTER SYSTEM RESET cyberbiz.sync_workers'"
  pg_ctlcluster 15 main restart
  RECV_URL="http://127.0.0.1:$RECV_PORT/webhooks"
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RECV_PORT/healthz")" != 000 ] && return 0
    sleep 0.2
  done
  echo "the webhook receiver does not answer on port $RECV_PORT" >&2
  return 1
}

# Prints the URL a server writes as its first stdout line to FILE, waiting up to 120 s (generating
# a large shop takes a while: 100,000 orders, about 10 s); fails naming WHAT if it never comes.
first_url() {
  local file=$1 what=$2 url=""
  for _ in $(seq 1 1200); do
    url=$(head -n 1 "$file" 2>/dev/null || true)
    case "$url" in http://*) echo "$url"; return 0 ;; esac
    sleep 0.1
  done
  echo "$what did not start: $(cat "$file")" >&2
  exit 1
}

# Starts the sandbox in the background with the given options; sets SANDBOX_URL and SANDBOX_PID.
start_sandbox() {
  local bin=$1; shift
  local out
  out=$(mktemp)
  "$bin" serve --listen 127.0.0.1:0 "$@" >"$out" 2>&1 &
  SANDBOX_PID=$!
  SANDBOX_URL=$(first_url "$out" "the sandbox")
  export SANDBOX_URL SANDBOX_PID
}

# As postgres, from a folder postgres may enter (the clone may sit in root's mode-700 home).
psql_pg() { (cd / && su postgres -c "psql -X -q -v ON_ERROR_STOP=1 $*"); }
