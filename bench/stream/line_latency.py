#!/usr/bin/env python3
"""Latency from a line printed by a job to the same line read from a pipe.

Usage: line_latency.py IMPL LINES COMMAND...
COMMAND prints LINES lines, each the CLOCK_REALTIME nanoseconds at which it
was written (`date +%s%N`); this reads its stdout line by line and takes the
difference to its own clock at arrival. Prints one RESULT line with the
median and 99th percentile in microseconds.
"""
import subprocess
import sys
import time


def main():
    impl, lines, command = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    samples = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, bufsize=0) as child:
        for raw in child.stdout:
            arrived = time.time_ns()
            try:
                printed = int(raw.strip())
            except ValueError:
                continue
            samples.append((arrived - printed) / 1000.0)
        child.wait()
    if len(samples) != lines:
        sys.exit(f"line_latency: {len(samples)} of {lines} lines came")
    samples.sort()
    p50 = samples[len(samples) // 2]
    p99 = samples[min(len(samples) - 1, (len(samples) * 99) // 100)]
    print(f"RESULT bench=line_latency impl={impl} n={lines} p50_us={p50:.1f} p99_us={p99:.1f}")


main()
