#!/usr/bin/env bash
# up.sh makes a Docker engine available on this machine and prints its version.
#
# Idempotent: installs the Debian docker.io package when no dockerd is present,
# starts dockerd in the background when `docker info` does not answer, and waits
# (up to DOCKER_UP_TIMEOUT seconds, default 60) until it does.
#
# Settings (environment):
#   DOCKER_UP_TIMEOUT  seconds to wait for the engine (default 60)
#   DOCKERD_LOG        where dockerd's output goes (default /tmp/dockerd.log)
set -euo pipefail

timeout_s="${DOCKER_UP_TIMEOUT:-60}"
log="${DOCKERD_LOG:-/tmp/dockerd.log}"

say() { printf 'docker-up: %s\n' "$*" >&2; }

# dockerd lives in /usr/sbin and looks up iptables on PATH: a CI job's PATH
# may lack the sbin folders, which would make it look missing (or fail to start).
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v dockerd >/dev/null 2>&1; then
	say "dockerd not found; installing docker.io with apt"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
	say "starting dockerd (log: $log)"
	# setsid detaches the engine from this script's process group so it outlives it.
	as_root setsid dockerd >"$log" 2>&1 </dev/null &
	deadline=$((SECONDS + timeout_s))
	until docker info >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			say "dockerd did not answer within ${timeout_s}s; last lines of $log:"
			tail -n 20 "$log" >&2 || true
			exit 1
		fi
		sleep 0.2
	done
fi

printf 'docker engine %s (API %s)\n' \
	"$(docker version --format '{{.Server.Version}}')" \
	"$(docker version --format '{{.Server.APIVersion}}')"
