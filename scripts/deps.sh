#!/bin/sh
# Installs the Debian packages weft needs to build, test and benchmark.
# Usage: scripts/deps.sh [build|bench]   (build is the default)
# Only missing packages are installed; apt-get runs through sudo when we are not root.
set -eu

build_packages="build-essential pkg-config libevent-dev libjansson-dev libnng-dev check libsubunit-dev nng-utils nettle-dev libjemalloc-dev libsqlite3-dev procps openssl passwd libcurl4-openssl-dev libhiredis-dev redis-server libpq-dev postgresql libmariadb-dev mariadb-server libssl-dev"
bench_packages="beanstalkd golang-go python3 python3-uvloop python3-aiohttp python3-requests python3-redis python3-asyncpg python3-aiomysql"

case "${1:-build}" in
build) wanted="$build_packages" ;;
bench) wanted="$build_packages $bench_packages" ;;
*) echo "usage: $0 [build|bench]" >&2; exit 2 ;;
esac

missing=""
for package in $wanted; do
	if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $package"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "deps: missing packages:$missing; run as root or install sudo" >&2
	exit 1
fi
echo "deps: installing$missing" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
