#!/usr/bin/env bash
# run_in_thread: no-op calls handed from tasks to a 2-thread pool, one at a time and all at
# once: weft_run_in_thread against asyncio's and uvloop's run_in_executor.
set -u
. "$WEFT_SOURCE/bench/peers/runtime/common.sh"
bench_run "$WEFT_BUILD/bench/offload/run_in_thread" 100000
bench_run "$PYTHON" "$WEFT_SOURCE/bench/offload/run_in_executor.py" asyncio 20000
if "$PYTHON" -c 'import uvloop' 2>/dev/null; then
	bench_run "$PYTHON" "$WEFT_SOURCE/bench/offload/run_in_executor.py" uvloop 20000
fi
