#!/usr/bin/env python3
"""The peer of run_in_thread: N no-op calls through loop.run_in_executor on a
2-thread ThreadPoolExecutor, one at a time and all at once (gather).

Usage: run_in_executor.py LOOP [N]     LOOP: asyncio | uvloop
"""
import asyncio
import concurrent.futures
import resource
import sys
import time


def no_op(value):
    return value


async def sequential(n, executor):
    loop = asyncio.get_running_loop()
    for i in range(n):
        if await loop.run_in_executor(executor, no_op, i) != i:
            raise RuntimeError("wrong result")


async def all_at_once(n, executor):
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(executor, no_op, i) for i in range(n)))


def report(bench, impl, n, seconds):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT bench={bench} impl={impl} n={n} secs={seconds:.3f} rate={n / seconds:.0f} "
          f"rss_kb={rss}", flush=True)


def main():
    impl = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    if impl == "uvloop":
        import uvloop
        uvloop.install()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        for bench, body in (("run_in_thread_seq", sequential), ("run_in_thread_all", all_at_once)):
            started = time.monotonic()
            asyncio.run(body(n, executor))
            report(bench, impl, n, time.monotonic() - started)


if __name__ == "__main__":
    main()
