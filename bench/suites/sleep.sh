#!/bin/bash
# sleep: 100,000 tasks sleeping 1 s at once, then joined. Wall time (secs) and peak RSS.
# impl=weft uses stackless sleep tasks (how weftd's sleep built-in runs); impl=weft-stackful has
# each task sleep on its own coroutine stack.
set -u
. "$WEFT_SOURCE/bench/peers/runtime/common.sh"
run_suite sleep 100000 100000
bench_run "$WEFT_BUILD/bench/runtime/sleep" 100000 stackful
