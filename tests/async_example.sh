#!/usr/bin/env bash
# examples/async_libevent.c must build against libweft and collect its 1,000
# results from a real weftd on a private socket.
set -euo pipefail
source_dir=${WEFT_SOURCE:?set by make check}
build_dir=${WEFT_BUILD:?set by make check}
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-async-example-XXXXXX")
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

cc -std=c11 -Wall -Wextra -Werror -I"$source_dir/include" $SANITIZER_FLAGS -o "$work/example" \
	"$source_dir/examples/async_libevent.c" "$build_dir/libweft.a" \
	$(pkg-config --cflags --libs jansson libevent) -lnng -lpthread -lm

url="ipc://$work/weft.sock"
"$build_dir/weftd" --listen "$url" --state-dir none --log-level warn 2>"$work/weftd.log" &
daemon_pid=$!
for _ in $(seq 1 100); do
	"$build_dir/weft" --url "$url" ping >/dev/null 2>&1 && break
	sleep 0.1
done
if output=$("$work/example" "$url"); then
	echo "PASS: examples/async_libevent.c: $output"
else
	echo "FAIL: examples/async_libevent.c: $output"
	cat "$work/weftd.log"
	exit 1
fi
