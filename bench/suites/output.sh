#!/usr/bin/env bash
# output: a command's output through `weft run` as it is made (issue 13).
#
#   stream_bytes   bytes/s of a 200 MB file through `weft run -- cat FILE`
#                  (impl weft; n and rate in MB) against `cat FILE | cat`
#                  (impl pipe), both into /dev/null, in the same run
#   stream_stdin   bytes/s of the same file into `weft run --stdin -- sha256sum`
#                  (impl weft) against `cat FILE | sha256sum` (impl pipe); the
#                  digests must match
#   line_latency   from a line printed by the job to the line read from
#                  `weft run`'s stdout (impl weft), against the same command
#                  through a plain pipe (impl pipe): p50 and p99 in µs
# Sizes: STREAM_MB (200), STREAM_LINES (200).
set -u
: "${WEFT_BUILD:?run me through bench/run or make bench (WEFT_BUILD is not set)}"
: "${WEFT_SOURCE:?run me through bench/run or make bench (WEFT_SOURCE is not set)}"
megabytes=${STREAM_MB:-200}
lines=${STREAM_LINES:-200}
work=$(mktemp -d /tmp/weft-bench-stream-XXXXXX)
daemon_pid=
cleanup() {
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
result_line() { # bench impl n start end
	awk -v bench="$1" -v impl="$2" -v n="$3" -v start="$4" -v end="$5" 'BEGIN {
		secs = end - start
		printf "RESULT bench=%s impl=%s n=%d secs=%.4f rate=%.1f\n", bench, impl, n, secs, n / secs }'
}

url="ipc://$work/weft.sock"
"$WEFT_BUILD/weftd" --listen "$url" --state-dir none --log-level warn 2>"$work/weftd.log" &
daemon_pid=$!
for _ in $(seq 1 100); do
	"$WEFT_BUILD/weft" --url "$url" ping >/dev/null 2>&1 && break
	sleep 0.1
done
# The job runs as the caller and reads the file itself.
chmod 755 "$work"
head -c "$((megabytes * 1000 * 1000))" /dev/urandom >"$work/data"
cat "$work/data" >/dev/null # into the page cache for both

start=$(now)
"$WEFT_BUILD/weft" --url "$url" run -- cat "$work/data" >/dev/null || exit 1
end=$(now)
result_line stream_bytes weft "$megabytes" "$start" "$end"

start=$(now)
cat "$work/data" | cat >/dev/null
end=$(now)
result_line stream_bytes pipe "$megabytes" "$start" "$end"

start=$(now)
streamed=$(cat "$work/data" | "$WEFT_BUILD/weft" --url "$url" run --stdin -- sha256sum) || exit 1
end=$(now)
result_line stream_stdin weft "$megabytes" "$start" "$end"
start=$(now)
piped=$(cat "$work/data" | sha256sum)
end=$(now)
result_line stream_stdin pipe "$megabytes" "$start" "$end"
if [ "$streamed" != "$piped" ]; then
	echo "stream: weft run --stdin gave $streamed, the pipe $piped" >&2
	exit 1
fi

# Each line is its own write (date and echo are separate processes), 5 ms apart.
printer="for i in \$(seq $lines); do date +%s%N; sleep 0.005; done"
python3 "$WEFT_SOURCE/bench/stream/line_latency.py" weft "$lines" \
	"$WEFT_BUILD/weft" --url "$url" run --shell -- "$printer" || exit 1
python3 "$WEFT_SOURCE/bench/stream/line_latency.py" pipe "$lines" sh -c "$printer" || exit 1
