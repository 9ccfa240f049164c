#!/usr/bin/env bash
# futures: a dependency chain of N jobs (built, then resolved by setting the bare future
# it hangs on) and as_completed over N jobs, through a private weftd. Sizes: FUTURES_JOBS (100000).
set -u
: "${WEFT_BUILD:?run me through bench/run or make bench (WEFT_BUILD is not set)}"
jobs=${FUTURES_JOBS:-100000}
work=$(mktemp -d /tmp/weft-bench-futures-XXXXXX)
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
url="ipc://$work/weft.sock"
# Every job of the run must stay known until it is collected.
"$WEFT_BUILD/weftd" --listen "$url" --state-dir none --retain-max $((jobs * 3)) --log-level warn 2>"$work/weftd.log" &
daemon_pid=$!
for _ in $(seq 1 100); do
	"$WEFT_BUILD/weft" --url "$url" ping >/dev/null 2>&1 && break
	sleep 0.1
done
timeout 300 "$WEFT_BUILD/bench/futures/futures_bench" --url "$url" --jobs "$jobs"
