#!/usr/bin/env bash
# 100,000 no-op calls through a 2-thread pool, one at a time and all at once.
set -u
: "${WEFT_BUILD:?run me through bench/run or make bench}"
"$WEFT_BUILD/bench/threadpool/bench_threadpool" 100000
