#!/usr/bin/env bash
# build.sh builds a local Postgres image from this machine's Debian postgresql-15
# packages, without any registry: the Postgres files, the libraries they link,
# a static busybox for the shell, and docker-entrypoint.sh (the official image's
# environment contract) are imported with `docker import`, then a one-line
# `docker build` adds STOPSIGNAL SIGINT (which `docker import -c` refuses).
#
# Usage: build.sh [-f] [IMAGE]
#   -f     rebuild even when IMAGE already exists
#   IMAGE  image name (default: $PGIMAGE_NAME or ripple/postgres:15-local)
#
# Installs postgresql-15 and busybox-static with apt when they are missing.
# Needs a running Docker engine (tools/docker/up.sh).
set -euo pipefail

force=0
if [ "${1:-}" = -f ]; then
	force=1
	shift
fi
image="${1:-${PGIMAGE_NAME:-ripple/postgres:15-local}}"
pg_major=15
here="$(cd "$(dirname "$0")" && pwd)"

say() { printf 'pgimage: %s\n' "$*" >&2; }

if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
	say "$image already exists (use -f to rebuild)"
	exit 0
fi

start=$SECONDS

missing=()
[ -x "/usr/lib/postgresql/$pg_major/bin/postgres" ] || missing+=("postgresql-$pg_major")
[ -x /bin/busybox ] || missing+=(busybox-static)
if [ "${#missing[@]}" -gt 0 ]; then
	say "installing ${missing[*]} with apt"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"

# Debian 12 is merged-/usr: keep the same shape so library paths resolve either way.
mkdir -p "$root"/usr/{bin,lib,lib64,sbin,share} "$root"/{etc,tmp,run/postgresql,var/lib/postgresql/data,docker-entrypoint-initdb.d}
for d in bin lib lib64 sbin; do ln -s "usr/$d" "$root/$d"; done
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"

# Postgres itself, without the LLVM JIT (it drags in libLLVM and libz3: +120 MB).
mkdir -p "$root/usr/lib/postgresql" "$root/usr/share/postgresql"
cp -a "/usr/lib/postgresql/$pg_major" "$root/usr/lib/postgresql/"
cp -a "/usr/share/postgresql/$pg_major" "$root/usr/share/postgresql/"
rm -rf "$root/usr/lib/postgresql/$pg_major/lib/"llvmjit* "$root/usr/lib/postgresql/$pg_major/lib/bitcode"
# Listen on every address, as the official image's postgresql.conf.sample does.
sample="$root/usr/share/postgresql/$pg_major/postgresql.conf.sample"
sed -i "s/^#listen_addresses = 'localhost'/listen_addresses = '*'/" "$sample"
grep -q "^listen_addresses = '\*'" "$sample" || {
	say "could not set listen_addresses in $sample"
	exit 1
}

# Time zones (Debian builds Postgres --with-system-tzdata), the C.UTF-8 locale, and locale(1): initdb runs `locale -a`.
cp -a /usr/share/zoneinfo "$root/usr/share/"
mkdir -p "$root/usr/lib/locale"
cp -a /usr/lib/locale/C.utf8 "$root/usr/lib/locale/"
cp -L /usr/bin/locale "$root/usr/bin/locale"

# A shell and the few commands the entrypoint uses, from one static busybox.
cp -L /bin/busybox "$root/usr/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ -e "$root/usr/bin/$applet" ] || ln -s busybox "$root/usr/bin/$applet"
done

# Every shared library any ELF file links (the loader included), copied at the path ldd names;
# busybox too, in case the host's is Debian's dynamically linked one.
find "$root/usr/lib/postgresql" "$root/usr/bin/locale" "$root/usr/bin/busybox" -type f \( -perm -u+x -o -name '*.so*' \) -print0 |
	{ xargs -0 ldd 2>/dev/null || true; } | # non-ELF files make ldd fail; their lines are just skipped
	awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' |
	sort -u >"$work/libs"
while read -r lib; do
	mkdir -p "$root$(dirname "$lib")"
	[ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
done <"$work/libs"

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/sh
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
postgres:x:999:
GROUP
printf 'passwd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"

install -D -m 0755 "$here/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"

chown -R 999:999 "$root/var/lib/postgresql" "$root/run/postgresql"
chmod 700 "$root/var/lib/postgresql/data"
chmod 3777 "$root/run/postgresql"

tar -C "$root" --numeric-owner -c . |
	docker import \
		-c 'USER postgres' \
		-c "ENV PATH=/usr/local/bin:/usr/lib/postgresql/$pg_major/bin:/usr/bin:/bin" \
		-c 'ENV PGDATA=/var/lib/postgresql/data' \
		-c 'ENV LANG=C.UTF-8' \
		-c "ENV PG_MAJOR=$pg_major" \
		-c 'EXPOSE 5432' \
		-c 'ENTRYPOINT ["docker-entrypoint.sh"]' \
		-c 'CMD ["postgres"]' \
		- "$image-base" >/dev/null
if ! printf 'FROM %s-base\nSTOPSIGNAL SIGINT\n' "$image" |
	DOCKER_BUILDKIT=0 docker build -q -t "$image" - >"$work/build.log" 2>&1; then
	cat "$work/build.log" >&2
	exit 1
fi

size="$(docker image inspect --format '{{.Size}}' "$image")"
say "built $image ($((size / 1024 / 1024)) MB) in $((SECONDS - start)) s"
