#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 and has the database `test`.
set -euo pipefail
HOST=127.0.0.1 PORT=5432 DB=test USER_=postgres
if ! pg_isready -q -h "$HOST" -p "$PORT"; then
  command -v pg_ctlcluster >/dev/null || { apt-get update -q && apt-get install -y -q postgresql; }
  service postgresql start || pg_ctlcluster --skip-systemctl-redirect 15 main start
  for _ in $(seq 30); do pg_isready -q -h "$HOST" -p "$PORT" && break; sleep 1; done
fi
if ! psql -h "$HOST" -p "$PORT" -U "$USER_" -lqt | cut -d'|' -f1 | grep -qw "$DB"; then
  createdb -h "$HOST" -p "$PORT" -U "$USER_" "$DB"
fi
echo "PostgreSQL ready: postgresql://$USER_@$HOST:$PORT/$DB"
