#!/bin/sh
# Runs during init against the temporary socket-only server.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c "CREATE TABLE from_sh (who text); INSERT INTO from_sh VALUES ('$POSTGRES_USER');"
