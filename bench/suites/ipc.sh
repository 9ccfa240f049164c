#!/usr/bin/env bash
# The ipc suite: echo jobs through weftd, against the bare nng REQ/REP floor
# over the same transport and against beanstalkd on loopback TCP.
#
#   ipc_serial      one job at a time          impls weft, weft-2rt, weft-raw, nng, nng-sync, beanstalkd
#   ipc_inflight64  64 jobs in flight          impls weft, weft-raw, nng, nng-sync, beanstalkd
#   ipc_inflight64 also impl weft-async: libweft's async API, 64 in flight from one thread
#   async_results   100,000 echo results through libweft's async API (bench/async): batch
#                   submits, each followed by a batch result, 4 batches in flight; impl weft-async
#   ipc_batch       100,000 jobs in batches    impls weft, weft-raw
#                   of 1,000, every result fetched (`result` with a batch's ids) and checked
#   ipc_serial, ipc_inflight64 and ipc_batch also impls weft-journal-normal and
#                   weft-journal-full: weft on a fresh journal with that --sync, in the same
#                   run as weft (--state-dir none); their lines carry base=weft, so the
#                   table shows the rate over weft's (the journal's cost, issue 12)
#
#   weft       libweft; N threads making blocking calls; submit with "wait" (one round trip)
#   weft-2rt   libweft; submit, then result (two round trips)
#   weft-raw   the protocol on a bare nng REQ socket, N contexts with aios chained on
#              callbacks: the same client code as impl nng
#   nng        bench/peers/nng_echo: 64 REP contexts echoing from aio callbacks;
#              client with N contexts and aios on one socket
#   nng-sync   the same server; client with N threads making blocking round trips
#   beanstalkd put -> reserve -> delete on one connection, pipelined N deep
#
# Started here and stopped on exit, one fresh server per measurement: weftd (ipc://,
# temp dir), the nng echo server (ipc://, temp dir), beanstalkd (127.0.0.1, a free port).
# Sizes (environment): IPC_SERIAL_COUNT (20000), IPC_INFLIGHT_COUNT (200000),
# IPC_BATCH_JOBS (100000), IPC_BATCH_SIZE (1000), IPC_BATCH_INFLIGHT (1: batch
# requests in flight), IPC_SECONDS (10: a cap on each
# measured loop), BEANSTALK_SERIAL_COUNT (10000), BEANSTALK_INFLIGHT_COUNT (100000).
set -u

: "${WEFT_BUILD:?run me through bench/run or make bench (WEFT_BUILD is not set)}"
serial_count=${IPC_SERIAL_COUNT:-20000}
inflight_count=${IPC_INFLIGHT_COUNT:-200000}
batch_jobs=${IPC_BATCH_JOBS:-100000}
batch_size=${IPC_BATCH_SIZE:-1000}
batch_inflight=${IPC_BATCH_INFLIGHT:-1}
seconds=${IPC_SECONDS:-10}
beanstalk_serial_count=${BEANSTALK_SERIAL_COUNT:-10000}
beanstalk_inflight_count=${BEANSTALK_INFLIGHT_COUNT:-100000}
inflight=64
# Each program gets its measured loop's cap plus time for warm-up and set-up.
program_timeout=$((seconds * 3 + 30))

weftd=$WEFT_BUILD/weftd
weft_bench=$WEFT_BUILD/bench/ipc/weft_ipc_bench
async_bench=$WEFT_BUILD/bench/async/async_bench
nng_server=$WEFT_BUILD/bench/peers/nng_echo/nng_echo_server
nng_client=$WEFT_BUILD/bench/peers/nng_echo/nng_echo_client
beanstalk_bench=$WEFT_BUILD/bench/peers/beanstalk/beanstalk_bench

for program in "$weftd" "$weft_bench" "$async_bench" "$nng_server" "$nng_client" "$beanstalk_bench"; do
	if [ ! -x "$program" ]; then
		echo "ipc: $program is missing; build it with: make bench BENCH=ipc" >&2
		exit 1
	fi
done
if ! command -v beanstalkd >/dev/null 2>&1; then
	echo "ipc: beanstalkd is not installed; run: scripts/deps.sh bench" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-bench-ipc.XXXXXX") || exit 1
server_pid=
failed=0

# Stops a server: SIGTERM, up to 5 s to exit, then SIGKILL.
stop_server() {
	local pid=$1
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	stop_server "$server_pid"
	server_pid=
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs one benchmark program, bounded in time; a failure is remembered and the
# suite goes on with the next one. --foreground keeps the program in our process
# group, so that a signal from bench/run to the group reaches it too.
measure() {
	if ! timeout --foreground --kill-after=5 "$program_timeout" "$@"; then
		echo "ipc: FAILED: ${*##*/}" >&2
		failed=1
	fi
}

# weftd's store for the next measure_weft: "none" (in memory), or "full"/"normal"
# (a fresh journal under $work with that --sync).
journal=none
start_weftd() {
	rm -f "$work/weft.sock"
	local state=(--state-dir none)
	if [ "$journal" != none ]; then
		rm -rf "$work/state"
		state=(--state-dir "$work/state" --sync "$journal")
	fi
	"$weftd" --listen "ipc://$work/weft.sock" "${state[@]}" >"$work/weftd.log" 2>&1 &
	server_pid=$!
	if ! "$weft_bench" --url "ipc://$work/weft.sock" --probe --seconds 10; then
		echo "ipc: weftd did not start; its log:" >&2
		cat "$work/weftd.log" >&2
		stop_server "$server_pid"
		server_pid=
		return 1
	fi
}

stop_weftd() {
	stop_server "$server_pid"
	server_pid=
	if grep -Eiq 'error|fatal|sanitizer' "$work/weftd.log"; then
		echo "ipc: weftd logged errors:" >&2
		cat "$work/weftd.log" >&2
	fi
}

start_nng_server() {
	rm -f "$work/nng.sock"
	"$nng_server" --listen "ipc://$work/nng.sock" --contexts 64 &
	server_pid=$!
	# Ready when a round trip succeeds (bounded: 100 tries, 50 ms apart).
	for _ in $(seq 100); do
		if "$nng_client" --url "ipc://$work/nng.sock" --count 1 --warmup 1 --seconds 1 \
			>/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "ipc: the nng echo server did not start" >&2
	stop_server "$server_pid"
	server_pid=
	return 1
}

# beanstalkd on 127.0.0.1 and a free port: a random port is tried, and another
# when this one is taken (beanstalkd then exits) or answers as something else.
beanstalk_port=
start_beanstalkd() {
	for _ in $(seq 20); do
		beanstalk_port=$((20000 + RANDOM % 40000))
		beanstalkd -l 127.0.0.1 -p "$beanstalk_port" 2>"$work/beanstalkd.log" &
		server_pid=$!
		for _ in $(seq 100); do
			kill -0 "$server_pid" 2>/dev/null || break
			if "$beanstalk_bench" --port "$beanstalk_port" --probe 2>/dev/null; then
				kill -0 "$server_pid" 2>/dev/null && return 0
				break
			fi
			sleep 0.05
		done
		stop_server "$server_pid"
		server_pid=
	done
	echo "ipc: beanstalkd did not start on a free port:" >&2
	cat "$work/beanstalkd.log" >&2
	return 1
}

# One measurement of weft's, on a weftd of its own (so that rss_kb is its own).
# On a journal, its RESULT line names weft (--state-dir none) as its base.
measure_weft() {
	if start_weftd; then
		if [ "$journal" = none ]; then
			measure "$weft_bench" --url "ipc://$work/weft.sock" --server-pid "$server_pid" "$@"
		else
			measure "$weft_bench" --url "ipc://$work/weft.sock" --server-pid "$server_pid" \
				"$@" > >(sed -u '/^RESULT /s/$/ base=weft/')
		fi
		stop_weftd
	else
		failed=1
	fi
}

# One measurement of the floor's, on an nng echo server of its own.
measure_nng() {
	if start_nng_server; then
		measure "$nng_client" --url "ipc://$work/nng.sock" --server-pid "$server_pid" "$@"
		stop_server "$server_pid"
		server_pid=
	else
		failed=1
	fi
}

# --- one at a time ---------------------------------------------------------------
serial="--count $serial_count --seconds $seconds"
measure_nng --bench ipc_serial --impl nng $serial
measure_nng --bench ipc_serial --impl nng-sync --sync $serial
measure_weft --bench ipc_serial --impl weft --mode serial $serial
# The journal's cost (issue 12): the same with a store, at each --sync.
for journal in normal full; do
	measure_weft --bench ipc_serial --impl "weft-journal-$journal" --mode serial $serial
done
journal=none
measure_weft --bench ipc_serial --impl weft-2rt --mode serial-2rt $serial
measure_weft --bench ipc_serial --impl weft-raw --via raw --mode serial $serial
if start_beanstalkd; then
	measure "$beanstalk_bench" --port "$beanstalk_port" --bench ipc_serial --impl beanstalkd \
		--count "$beanstalk_serial_count" --seconds "$seconds" --server-pid "$server_pid"
	stop_server "$server_pid"
	server_pid=
else
	failed=1
fi

# --- 64 in flight ----------------------------------------------------------------
many="--inflight $inflight --count $inflight_count --seconds $seconds --warmup 5000"
measure_nng --bench ipc_inflight64 --impl nng $many
measure_nng --bench ipc_inflight64 --impl nng-sync --sync $many
measure_weft --bench ipc_inflight64 --impl weft --mode serial $many
for journal in normal full; do
	measure_weft --bench ipc_inflight64 --impl "weft-journal-$journal" --mode serial $many
done
journal=none
measure_weft --bench ipc_inflight64 --impl weft-raw --via raw --mode serial $many
measure_async() {
	if start_weftd; then
		measure "$async_bench" --url "ipc://$work/weft.sock" "$@"
		stop_weftd
	else
		failed=1
	fi
}
measure_async --bench ipc_inflight64 --impl weft-async --mode inflight --inflight "$inflight" \
	--count "$inflight_count"
if start_beanstalkd; then
	measure "$beanstalk_bench" --port "$beanstalk_port" --bench ipc_inflight64 \
		--impl beanstalkd --inflight "$inflight" --count "$beanstalk_inflight_count" \
		--seconds "$seconds" --warmup 5000 --server-pid "$server_pid"
	stop_server "$server_pid"
	server_pid=
else
	failed=1
fi

# --- batches ---------------------------------------------------------------------
batch="--mode batch --jobs $batch_jobs --batch $batch_size --batch-inflight $batch_inflight"
batch="$batch --inflight $inflight --seconds $seconds"
measure_weft --bench ipc_batch --impl weft --via libweft $batch
for journal in normal full; do
	measure_weft --bench ipc_batch --impl "weft-journal-$journal" --via libweft $batch
done
journal=none
measure_weft --bench ipc_batch --impl weft-raw --via raw $batch
measure_async --bench async_results --impl weft-async --mode results --count "$batch_jobs" \
	--batch "$batch_size" --batch-inflight 4

exit "$failed"
