#!/usr/bin/env bash
# A local PostgreSQL for the tests in tests/postgres/, from Debian's packages. Idempotent: run it as
# often as you like. Prints ONE line on stdout, the DSN to test against; everything else goes to stderr.
#
#   export GRANTCTL_TEST_POSTGRES_DSN=$(bash .ci/postgres.sh)
#
# It installs the `postgresql` package when no server is installed, creates and starts a cluster
# (`pg_ctlcluster <version> main start`), and creates the role `grantctl` (password login over
# 127.0.0.1) and the database `grantctl_test` owned by it. Needs root (or sudo) for apt and for
# acting as the `postgres` user. The password is for a throwaway test database only; override it
# with GRANTCTL_TEST_POSTGRES_PASSWORD.
set -euo pipefail

ROLE=grantctl
DATABASE=grantctl_test
PASSWORD=${GRANTCTL_TEST_POSTGRES_PASSWORD:-grantctl-test-only}
CLUSTER=main
case $PASSWORD in
  *[!A-Za-z0-9._~-]*) printf '.ci/postgres.sh: GRANTCTL_TEST_POSTGRES_PASSWORD may hold only A-Z a-z 0-9 . _ ~ - (it goes into a URI)\n' >&2; exit 1 ;;
esac

log() { printf '.ci/postgres.sh: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

server_version() {
  # the newest server installed from Debian's packages (/usr/lib/postgresql/<version>/bin/postgres)
  local found
  found=$( (ls -1 /usr/lib/postgresql/*/bin/postgres 2>/dev/null || true) | sed -E 's#^/usr/lib/postgresql/([^/]+)/.*#\1#' | sort -V | tail -n 1)
  printf '%s' "$found"
}

install_server() {
  if [ -n "$(server_version)" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
    return
  fi
  log "installing PostgreSQL from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
}

cluster_field() {
  # pg_lsclusters columns: Ver Cluster Port Status Owner Data-directory Log-file
  pg_lsclusters --no-header | awk -v v="$1" -v c="$CLUSTER" -v f="$2" '$1 == v && $2 == c { print $f }'
}

start_cluster() {
  local version=$1
  if [ -z "$(cluster_field "$version" 1)" ]; then
    log "creating cluster $version/$CLUSTER"
    as_root pg_createcluster "$version" "$CLUSTER" >&2
  fi
  if [ "$(cluster_field "$version" 4)" != "online" ]; then
    log "starting cluster $version/$CLUSTER"
    as_root pg_ctlcluster "$version" "$CLUSTER" start >&2
  fi
  local port tries=0
  port=$(cluster_field "$version" 3)
  until pg_isready -q -h 127.0.0.1 -p "$port"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
      log "PostgreSQL on 127.0.0.1:$port did not accept connections within 30 s; see $(cluster_field "$version" 7)"
      exit 1
    fi
    sleep 0.5
  done
}

psql_admin() {
  local port=$1
  shift
  as_postgres psql -X -q -At -v ON_ERROR_STOP=1 -p "$port" "$@"
}

create_role_and_database() {
  local port=$1
  # The password goes in through a psql variable (:'password' quotes it), never on a command line.
  psql_admin "$port" -d postgres -v role="$ROLE" -v password="$PASSWORD" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'password') \gexec
SQL
  psql_admin "$port" -d postgres -v role="$ROLE" -v database="$DATABASE" >&2 <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'database') \gexec
SQL
}

main() {
  install_server
  local version port
  version=$(server_version)
  if [ -z "$version" ]; then
    log "no PostgreSQL server found after installing the postgresql package"
    exit 1
  fi
  start_cluster "$version"
  port=$(cluster_field "$version" 3)
  create_role_and_database "$port"
  log "PostgreSQL $version on 127.0.0.1:$port: role $ROLE, database $DATABASE"
  printf 'postgresql://%s:%s@127.0.0.1:%s/%s\n' "$ROLE" "$PASSWORD" "$port" "$DATABASE"
}

main "$@"
