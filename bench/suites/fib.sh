#!/bin/bash
# fib: fork-join fib(n), each call spawning fib(n-1) as a task, computing fib(n-2) inline and
# joining. Spawned tasks per second. weft and Go compute fib(30) (832,039 spawns: long enough
# for the rate to mean something on a busy machine); the Python peers fib(22).
set -u
. "$WEFT_SOURCE/bench/peers/runtime/common.sh"
run_suite fib 30 22
