#!/usr/bin/env bash
# Install (from Debian's packages, if missing) and start PostgreSQL on localhost, with a role and database for
# the multi-worker tests. Prints the URL to use as NAS_TEST_POSTGRES_URL.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
  pg_createcluster "$ver" main >&2
fi
pg_ctlcluster "$ver" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  runuser -u postgres -- pg_isready -q -h 127.0.0.1 && break
  sleep 1
done
runuser -u postgres -- psql -q -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='nas') THEN CREATE ROLE nas LOGIN PASSWORD 'nas' CREATEDB; END IF; END\$\$;" >&2
runuser -u postgres -- psql -q -tc "SELECT 1 FROM pg_database WHERE datname='nas_test'" | grep -q 1 \
  || runuser -u postgres -- createdb -O nas nas_test >&2
echo "postgresql://nas:nas@127.0.0.1:5432/nas_test"
