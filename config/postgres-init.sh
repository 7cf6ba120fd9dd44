#!/bin/sh
# Run once by the postgres image when its data volume is new
# (compose.postgres.yaml): the service's role, which owns its database and is
# not a superuser (docs/operations.md "PostgreSQL"). The password comes from
# DATABASE_PASSWORD and is passed as a psql variable, never spliced into SQL.
set -eu
psql -v ON_ERROR_STOP=1 -v password="$DATABASE_PASSWORD" --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE token_service LOGIN PASSWORD :'password';
CREATE DATABASE token_service OWNER token_service;
SQL
