# Shared by bench/suites/{spawn,fib,sleep,pingpong}.sh: checks the environment, builds a Go peer
# into the build directory (standard library only, no network), runs programs with a time limit.
# Sourced, not run. Expects WEFT_BUILD and WEFT_SOURCE (absolute paths).

: "${WEFT_BUILD:?set WEFT_BUILD to the build directory}"
: "${WEFT_SOURCE:?set WEFT_SOURCE to the source tree}"
BENCH_TIME_LIMIT=${BENCH_TIME_LIMIT:-300}
PEERS="$WEFT_SOURCE/bench/peers/runtime"
# Debian's interpreter, which python3-uvloop (installed by deps.sh) belongs to; a python3 found
# first on PATH (a virtualenv, pyenv) may not see Debian's packages. WEFT_PYTHON overrides.
if [ -n "${WEFT_PYTHON:-}" ]; then
	PYTHON=$WEFT_PYTHON
elif [ -x /usr/bin/python3 ]; then
	PYTHON=/usr/bin/python3
else
	PYTHON=python3
fi

"$WEFT_SOURCE/scripts/deps.sh" bench >&2 || echo "bench: deps.sh bench failed; peers may be missing" >&2

# Runs a command with the time limit; a run that fails or times out says so on stderr and prints
# no RESULT line (the table then shows it as missing instead of as a wrong number).
bench_run() {
	local output status
	output=$(timeout "$BENCH_TIME_LIMIT" "$@")
	status=$?
	if [ $status -ne 0 ]; then
		echo "bench: '$*' failed or exceeded ${BENCH_TIME_LIMIT}s (status $status)" >&2
		return 0
	fi
	printf '%s\n' "$output" | grep '^RESULT '
}

# Prints the path of the Go peer for benchmark $1, building it when its source is newer.
go_peer() {
	local name=$1 out="$WEFT_BUILD/bench/peers/runtime/$1-go"
	if ! command -v go >/dev/null 2>&1; then
		echo "bench: go is not installed; no Go peer" >&2
		return 1
	fi
	if [ ! -x "$out" ] || [ "$PEERS/$name.go" -nt "$out" ]; then
		mkdir -p "$WEFT_BUILD/bench/peers/runtime" "$WEFT_BUILD/go/cache" "$WEFT_BUILD/go/path"
		if ! GOCACHE="$WEFT_BUILD/go/cache" GOPATH="$WEFT_BUILD/go/path" GOTOOLCHAIN=local \
			GO111MODULE=off GOFLAGS= go build -o "$out" "$PEERS/$name.go" >&2; then
			echo "bench: could not build the Go peer $name" >&2
			return 1
		fi
	fi
	printf '%s\n' "$out"
}

# Runs the weft program, the Go peer and the Python peers (asyncio, and uvloop when importable)
# of benchmark $1. $2: arguments of the weft and Go programs; $3: the Python peers' N (smaller,
# so they stay within the time limit: rates are per second either way).
run_suite() {
	local name=$1 args=$2 python_n=$3 program
	program="$WEFT_BUILD/bench/runtime/$name"
	if [ ! -x "$program" ]; then
		echo "bench: $program is missing; run make bench" >&2
		return 1
	fi
	# shellcheck disable=SC2086
	bench_run "$program" $args
	if program=$(go_peer "$name"); then
		# shellcheck disable=SC2086
		bench_run "$program" $args
	fi
	bench_run "$PYTHON" "$PEERS/peer_asyncio.py" "$name" asyncio "$python_n"
	if "$PYTHON" -c 'import uvloop' 2>/dev/null; then
		bench_run "$PYTHON" "$PEERS/peer_asyncio.py" "$name" uvloop "$python_n"
	else
		echo "bench: $PYTHON cannot import uvloop (python3-uvloop); no uvloop peer" >&2
	fi
}
