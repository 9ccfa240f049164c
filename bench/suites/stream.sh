#!/usr/bin/env bash
# stream: items/s through `next` for a `count` of N (the iterator's batches,
# and one item per request), and events/s to one follower while N jobs run,
# through a private weftd. Sizes: STREAM_ITEMS, STREAM_JOBS (100000 each).
set -u
: "${WEFT_BUILD:?run me through bench/run or make bench (WEFT_BUILD is not set)}"
items=${STREAM_ITEMS:-100000}
jobs=${STREAM_JOBS:-100000}
work=$(mktemp -d /tmp/weft-bench-stream-XXXXXX)
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
url="ipc://$work/weft.sock"
# The ring holds every event of the run (3 a job), so a lost one is a fault.
"$WEFT_BUILD/weftd" --listen "$url" --state-dir none --events-max $((jobs * 3 + 1000)) \
	--events-max-bytes $(((jobs * 3 + 1000) * 128)) --log-level warn 2>"$work/weftd.log" &
daemon_pid=$!
for _ in $(seq 1 100); do
	"$WEFT_BUILD/weft" --url "$url" ping >/dev/null 2>&1 && break
	sleep 0.1
done
timeout 600 "$WEFT_BUILD/bench/stream/stream_bench" --url "$url" --items "$items" --jobs "$jobs"
