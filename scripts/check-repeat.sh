#!/usr/bin/env bash
# Runs every test program N times and reports each one that failed even once,
# with how often, and keeps the output of every failed run.
#
#   scripts/check-repeat.sh N LOG_DIR PROGRAM... [-- SCRIPT...]
#
# PROGRAMs are executables, SCRIPTs are run with bash. The environment is the
# one `make check` gives its tests (the Makefile's check-repeat target sets it).
# Exit status: 0 when every run of every program passed, 1 otherwise.
set -u
if [ $# -lt 3 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 N LOG_DIR PROGRAM... [-- SCRIPT...]" >&2
	exit 2
fi
rounds=$1 logs=$2
shift 2
mkdir -p "$logs" || exit 2
programs=() scripts=() in_scripts=false
for arg in "$@"; do
	if [ "$arg" = -- ]; then in_scripts=true
	elif $in_scripts; then scripts+=("$arg")
	else programs+=("$arg"); fi
done

declare -A failures
flaky=0
run_one() { # kind name round
	local kind=$1 name=$2 round=$3 log
	log="$logs/$(basename "$name").$round.log"
	if [ "$kind" = script ]; then bash "$name" >"$log" 2>&1; else "./$name" >"$log" 2>&1; fi
	local status=$?
	if [ $status -eq 0 ]; then
		rm -f "$log"
	else
		failures[$name]=$(( ${failures[$name]:-0} + 1 ))
		echo "   round $round: $name exited $status (output kept in $log)"
	fi
}
for ((round = 1; round <= rounds; round++)); do
	echo "== round $round of $rounds"
	for program in "${programs[@]}"; do run_one program "$program" "$round"; done
	for script in "${scripts[@]}"; do run_one script "$script" "$round"; done
done
echo "== check-repeat: $rounds rounds of ${#programs[@]} programs and ${#scripts[@]} scripts"
for name in "${programs[@]}" "${scripts[@]}"; do
	if [ -n "${failures[$name]:-}" ]; then
		echo "FLAKY: $name failed ${failures[$name]} of $rounds runs"
		flaky=$((flaky + 1))
	fi
done
if [ $flaky -eq 0 ]; then
	echo "every run passed"
	exit 0
fi
exit 1
