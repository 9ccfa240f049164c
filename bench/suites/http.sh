#!/usr/bin/env bash
# http: 1,000 concurrent GETs of a 100 ms local endpoint through weft's http.get, against
# aiohttp + asyncio and requests + run_in_executor (python3-aiohttp, python3-requests).
# Size: HTTP_GETS (1000).
set -u
: "${WEFT_BUILD:?run me through bench/run or make bench (WEFT_BUILD is not set)}"
WEFTD="$WEFT_BUILD/weftd" WEFT_SOURCE="$(cd "$(dirname "$0")/../.." && pwd)" \
	timeout 600 "$WEFT_BUILD/bench/io/http_bench" "${HTTP_GETS:-1000}"
