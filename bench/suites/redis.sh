#!/usr/bin/env bash
# redis: 100,000 GETs as weft redis.command jobs (batches of 1000) against redis.asyncio
# (python3-redis) and redis-benchmark, on a unix socket. Size: REDIS_GETS (100000).
set -u
: "${WEFT_BUILD:?run me through bench/run or make bench (WEFT_BUILD is not set)}"
WEFTD="$WEFT_BUILD/weftd" WEFT_SOURCE="$(cd "$(dirname "$0")/../.." && pwd)" \
	timeout 600 "$WEFT_BUILD/bench/io/redis_bench" "${REDIS_GETS:-100000}"
