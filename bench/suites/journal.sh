#!/usr/bin/env bash
# The journal's replay (issue 12): how long weftd takes to read back N journaled
# jobs after a kill -9, and how much memory it holds then, against the weftd that
# made them.
#
#   journal_replay_<N>  impl weft            n jobs replayed, secs the replay (weftd's own
#                                            log line), rate jobs/s, rss_kb VmHWM after it
#                       impl weft-ready      secs from the start of weftd to its first
#                                            answer (replay included)
#                       impl weft-no-restart rss_kb the VmRSS of the weftd that accepted and
#                                            ran the N jobs, once they were all finished
#
# One weftd (--sync normal, --retain-max above N, so that no finished job is dropped)
# gets N echo jobs in batches of 1,000 and runs them; it is killed with SIGKILL and a
# second weftd starts on the same state directory. Sizes (environment):
# JOURNAL_REPLAY_JOBS ("100000 1000000": one measurement per count; a smaller list
# keeps `make bench` short), JOURNAL_FILL_SECONDS (600: a cap on submitting one count).
set -u

: "${WEFT_BUILD:?run me through bench/run or make bench (WEFT_BUILD is not set)}"
counts=${JOURNAL_REPLAY_JOBS:-100000 1000000}
fill_seconds=${JOURNAL_FILL_SECONDS:-600}

weftd=$WEFT_BUILD/weftd
weft_bench=$WEFT_BUILD/bench/ipc/weft_ipc_bench
for program in "$weftd" "$weft_bench"; do
	if [ ! -x "$program" ]; then
		echo "journal: $program is missing; build it with: make bench BENCH=journal" >&2
		exit 1
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-bench-journal.XXXXXX") || exit 1
server_pid=
failed=0

cleanup() {
	if [ -n "$server_pid" ]; then
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A /proc/PID/status field in KiB (VmRSS, VmHWM).
memory_kb() {
	awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status" 2>/dev/null
}

# Starts weftd on the store with the given count's retention; returns once it
# answers (bounded: the probe waits at most 600 s, for the replay of a large store).
start_weftd() {
	local count=$1
	rm -f "$work/weft.sock"
	"$weftd" --listen "ipc://$work/weft.sock" --state-dir "$work/state" --sync normal \
		--retain-max $((count + 10000)) >>"$work/weftd.log" 2>&1 &
	server_pid=$!
	if ! timeout 620 "$weft_bench" --url "ipc://$work/weft.sock" --probe --seconds 600; then
		echo "journal: weftd did not start; its log:" >&2
		cat "$work/weftd.log" >&2
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
		server_pid=
		return 1
	fi
}

kill_weftd() {
	kill -KILL "$server_pid" 2>/dev/null
	wait "$server_pid" 2>/dev/null
	server_pid=
}

for count in $counts; do
	if ! [[ $count =~ ^[1-9][0-9]*$ ]]; then
		echo "journal: JOURNAL_REPLAY_JOBS holds '$count', not a count of jobs" >&2
		failed=1
		continue
	fi
	bench=journal_replay_$count
	rm -rf "$work/state"
	: >"$work/weftd.log"
	start_weftd "$count" || { failed=1; continue; }
	# Every result is fetched, so every job is finished (and its end committed
	# with the next commit) before the kill.
	if ! timeout --foreground $((fill_seconds + 60)) "$weft_bench" --url "ipc://$work/weft.sock" \
		--mode batch --jobs "$count" --batch 1000 --batch-inflight 2 --inflight 64 \
		--seconds "$fill_seconds" --bench journal_fill --impl weft >"$work/fill.txt" 2>&1; then
		echo "journal: filling the store with $count jobs failed:" >&2
		cat "$work/fill.txt" >&2
		kill_weftd
		failed=1
		continue
	fi
	filled=$(sed -n 's/^RESULT .* n=\([0-9]*\).*/\1/p' "$work/fill.txt")
	# A commit barrier: the last ends are in the store before the kill.
	"$WEFT_BUILD/weft" --url "ipc://$work/weft.sock" cancel 999999999 >/dev/null 2>&1
	made_rss=$(memory_kb "$server_pid" VmRSS)
	kill_weftd
	echo "journal: $count jobs asked for, $filled submitted and run; the store:" \
		"$(du -sk "$work/state" | cut -f1) KiB"
	: >"$work/weftd.log"
	began=$(date +%s.%N)
	start_weftd "$count" || { failed=1; continue; }
	ended=$(date +%s.%N)
	hwm=$(memory_kb "$server_pid" VmHWM)
	line=$(grep -m1 'replayed [0-9]* jobs' "$work/weftd.log")
	replayed=$(sed -n 's/.*replayed \([0-9]*\) jobs.*/\1/p' <<<"$line")
	secs=$(sed -n 's/.* in \([0-9.]*\) s$/\1/p' <<<"$line")
	kill_weftd
	if [ -z "$replayed" ] || [ -z "$secs" ]; then
		echo "journal: weftd did not log its replay; its log:" >&2
		cat "$work/weftd.log" >&2
		failed=1
		continue
	fi
	if [ "$replayed" -lt "${filled:-0}" ]; then
		echo "journal: $replayed jobs replayed of the $filled submitted" >&2
		failed=1
	fi
	awk -v bench="$bench" -v n="$replayed" -v secs="$secs" -v rss="$hwm" -v began="$began" \
		-v ended="$ended" -v made="$made_rss" 'BEGIN {
		printf "RESULT bench=%s impl=weft n=%d secs=%.3f rate=%.0f rss_kb=%d\n", bench, n, secs,
			(secs > 0 ? n / secs : 0), rss
		printf "RESULT bench=%s impl=weft-ready n=%d secs=%.3f\n", bench, n, ended - began
		printf "RESULT bench=%s impl=weft-no-restart n=%d rss_kb=%d\n", bench, n, made
	}'
done

exit "$failed"
