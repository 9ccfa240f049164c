#!/bin/bash
# spawn: 1,000,000 trivial tasks spawned from one task and joined. weft, Go, asyncio, uvloop.
# weft also reports impl=weft-handles: the same with one handle per task joined one by one.
set -u
. "$WEFT_SOURCE/bench/peers/runtime/common.sh"
run_suite spawn 1000000 200000
bench_run "$WEFT_BUILD/bench/runtime/spawn" 1000000 handles
