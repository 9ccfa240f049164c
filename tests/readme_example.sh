#!/usr/bin/env bash
# The C example in README.md must compile against libweft and work against a real weftd.
set -euo pipefail
source_dir=${WEFT_SOURCE:?set by make check}
build_dir=${WEFT_BUILD:?set by make check}
work=$(mktemp -d /tmp/weft-readme-XXXXXX)
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

awk '/^```c$/ { inside = 1; next } /^```$/ { if (inside) exit } inside { print }' \
	"$source_dir/README.md" > "$work/example.c"
[ -s "$work/example.c" ] || { echo "FAIL: no C example found in README.md"; exit 1; }
# The same flags as the project's own code, so the example stays warning-free.
cc -std=c11 -Wall -Wextra -Werror -I"$source_dir/include" $SANITIZER_FLAGS -o "$work/example" \
	"$work/example.c" "$build_dir/libweft.a" $(pkg-config --cflags --libs jansson) -lnng -lpthread -lm

export WEFT_URL="ipc://$work/weft.sock"
"$build_dir/weftd" --listen "$WEFT_URL" --state-dir none --log-level warn 2>"$work/weftd.log" &
daemon_pid=$!
for _ in $(seq 1 100); do
	"$build_dir/weft" ping >/dev/null 2>&1 && break
	sleep 0.1
done
output=$("$work/example")
case "$output" in
"job "*': "666"') echo "PASS: README example printed: $output" ;;
*) echo "FAIL: README example printed: '$output'"; cat "$work/weftd.log"; exit 1 ;;
esac
