#!/bin/sh
# docker-entrypoint.sh starts Postgres the way the official postgres image does.
#
# Contract kept from the official image: POSTGRES_USER (default postgres),
# POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust),
# POSTGRES_DB (default $POSTGRES_USER), POSTGRES_INITDB_ARGS,
# POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD (default scram-sha-256),
# PGDATA, the *_FILE variants of the first four, and the init scripts in
# /docker-entrypoint-initdb.d (*.sh run or sourced, *.sql and *.sql.gz fed to
# psql). On a fresh data directory it runs initdb, starts a temporary
# socket-only server for the init scripts, stops it, then starts the real one,
# so "database system is ready to accept connections" is logged twice.
set -eu

say() { printf '%s\n' "$*" >&2; }

# file_env sets VAR from VAR_FILE when that is given (VAR and VAR_FILE are exclusive).
file_env() {
	var="$1"
	file_var="${var}_FILE"
	eval "val=\${$var:-}"
	eval "file_val=\${$file_var:-}"
	if [ -n "$val" ] && [ -n "$file_val" ]; then
		say "error: both $var and $file_var are set (but are exclusive)"
		exit 1
	fi
	if [ -n "$file_val" ]; then
		val="$(cat "$file_val")"
	elif [ -z "$val" ]; then
		val="${2:-}"
	fi
	export "$var=$val"
	unset "$file_var" || true
}

if [ "${1#-}" != "$1" ]; then
	set -- postgres "$@"
fi

# Run as root (docker run --user root): fix the data directory's owner, then drop to postgres.
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec su -p -s /bin/sh postgres "$0" "$@"
fi

if [ "$1" != postgres ]; then
	exec "$@"
fi

file_env POSTGRES_PASSWORD
file_env POSTGRES_USER postgres
file_env POSTGRES_DB "$POSTGRES_USER"
file_env POSTGRES_INITDB_ARGS
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || true

if [ -s "$PGDATA/PG_VERSION" ]; then
	say ""
	say "PostgreSQL Database directory appears to contain a database; Skipping initialization"
	say ""
	exec "$@"
fi

if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
	say "Error: Database is uninitialized and superuser password is not specified."
	say "       You must specify POSTGRES_PASSWORD to a non-empty value for the"
	say "       superuser. For example, \"-e POSTGRES_PASSWORD=password\" on \"docker run\"."
	say ""
	say "       You may also use \"POSTGRES_HOST_AUTH_METHOD=trust\" to allow all"
	say "       connections without a password. This is *not* recommended."
	exit 1
fi

if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
	mkdir -p "$POSTGRES_INITDB_WALDIR"
	chmod 700 "$POSTGRES_INITDB_WALDIR"
fi

# initdb: the password arrives on stdin so it never shows in a process list.
# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list by contract
printf '%s\n' "$POSTGRES_PASSWORD" | initdb \
	--username="$POSTGRES_USER" --pwfile=/dev/stdin \
	${POSTGRES_INITDB_WALDIR:+--waldir="$POSTGRES_INITDB_WALDIR"} \
	$POSTGRES_INITDB_ARGS

printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

# The temporary server listens on the socket only, so nothing outside sees it before init ends.
export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
PGHOST='' PGHOSTADDR='' pg_ctl -D "$PGDATA" -w start \
	-o "-c listen_addresses='' -p ${PGPORT:-5432}"

psql_init() {
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

exists="$(psql_init --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<'SQL'
SELECT 1 FROM pg_database WHERE datname = :'db';
SQL
)"
if [ -z "$(printf '%s' "$exists" | tr -d ' \n')" ]; then
	psql_init --dbname postgres --set db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
	say ""
fi

for f in /docker-entrypoint-initdb.d/*; do
	[ -e "$f" ] || continue
	case "$f" in
	*.sh)
		if [ -x "$f" ]; then
			say "$0: running $f"
			"$f"
		else
			say "$0: sourcing $f"
			# shellcheck disable=SC1090
			. "$f"
		fi
		;;
	*.sql)
		say "$0: running $f"
		psql_init --dbname "$POSTGRES_DB" -f "$f"
		say ""
		;;
	*.sql.gz)
		say "$0: running $f"
		gunzip -c "$f" | psql_init --dbname "$POSTGRES_DB"
		say ""
		;;
	*) say "$0: ignoring $f" ;;
	esac
done

pg_ctl -D "$PGDATA" -m fast -w stop
unset PGPASSWORD

say ""
say "PostgreSQL init process complete; ready for start up."
say ""

exec "$@"
