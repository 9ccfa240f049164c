#!/bin/bash
# pingpong: two tasks pass a token back and forth 1,000,000 times. Round trips per second.
# The Python peers do 200,000 round trips.
set -u
. "$WEFT_SOURCE/bench/peers/runtime/common.sh"
run_suite pingpong 1000000 200000
