#!/usr/bin/env bash
# exec: 2,000 `/bin/true` commands with 2 running at a time, all awaited.
#
#   weft              weftd --procs 2: one batch submit of 2,000 exec jobs, then one
#                     `result` long poll for all of them (every job checked done)
#   posix_spawn_loop  tests/helpers/spawn_loop: bare posix_spawn + waitpid, 2 in flight
#   xargs             xargs -P2 -n1 /bin/true
# Sizes: EXEC_JOBS (2000).
set -u
: "${WEFT_BUILD:?run me through bench/run or make bench (WEFT_BUILD is not set)}"
jobs=${EXEC_JOBS:-2000}
work=$(mktemp -d /tmp/weft-bench-exec-XXXXXX)
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
"$WEFT_BUILD/weftd" --listen "$url" --state-dir none --procs 2 --log-level warn 2>"$work/weftd.log" &
daemon_pid=$!
for _ in $(seq 1 100); do
	"$WEFT_BUILD/weft" --url "$url" ping >/dev/null 2>&1 && break
	sleep 0.1
done
batch=$(awk -v n="$jobs" 'BEGIN {
	printf "{\"op\":\"submit\",\"jobs\":["
	for (i = 0; i < n; i++) printf "%s{\"fn\":\"exec\",\"args\":{\"argv\":[\"/bin/true\"]}}", i ? "," : ""
	printf "]}" }')
start=$(now)
reply=$("$WEFT_BUILD/weft" --url "$url" request "$batch")
ids=$(printf '%s' "$reply" | sed -n 's/.*"ids":\(\[[^]]*\]\).*/\1/p')
results=$("$WEFT_BUILD/weft" --url "$url" request "{\"op\":\"result\",\"ids\":$ids}")
end=$(now)
done_count=$(printf '%s' "$results" | grep -o '"state":"done"' | wc -l)
if [ "$done_count" -ne "$jobs" ]; then
	echo "exec: only $done_count of $jobs jobs are done" >&2
	exit 1
fi
result_line exec_true weft "$jobs" "$start" "$end"

"$WEFT_BUILD/tests/helpers/spawn_loop" "$jobs" 2 /bin/true |
	sed 's/bench=proc_exec_true/bench=exec_true/'

start=$(now)
seq "$jobs" | xargs -P2 -n1 /bin/true
end=$(now)
result_line exec_true xargs "$jobs" "$start" "$end"
