#!/usr/bin/env python3
"""Python peers of weft's runtime benchmarks, on asyncio or uvloop.

Usage: peer_asyncio.py BENCH LOOP [N]
  BENCH: spawn | fib | sleep | pingpong      LOOP: asyncio | uvloop
Prints one RESULT line like the other implementations.
"""
import asyncio
import resource
import sys
import time


async def bench_spawn(n):
    # n trivial tasks, then wait for them all (as the Go peer does with a WaitGroup).
    async def trivial():
        return None

    tasks = [asyncio.ensure_future(trivial()) for _ in range(n)]
    await asyncio.gather(*tasks)
    return n


async def fib(n):
    if n < 2:
        return n
    child = asyncio.ensure_future(fib(n - 1))
    other = await fib(n - 2)
    return await child + other


def fib_spawns(n):
    if n < 2:
        return 0
    a, b = 0, 0
    for _ in range(2, n + 1):
        a, b = b, 1 + b + a
    return b


async def bench_fib(n):
    await fib(n)
    return fib_spawns(n)


async def bench_sleep(n):
    await asyncio.gather(*(asyncio.sleep(1.0) for _ in range(n)))
    return n


async def bench_pingpong(n):
    # Two tasks pass a token through two queues of size 1.
    to_pong = asyncio.Queue(maxsize=1)
    to_ping = asyncio.Queue(maxsize=1)

    async def pong():
        for _ in range(n):
            token = await to_pong.get()
            await to_ping.put(token)

    partner = asyncio.ensure_future(pong())
    for i in range(n):
        await to_pong.put(i)
        await to_ping.get()
    await partner
    return n


BENCHES = {
    "spawn": (bench_spawn, 1000000),
    "fib": (bench_fib, 27),
    "sleep": (bench_sleep, 100000),
    "pingpong": (bench_pingpong, 1000000),
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in BENCHES or sys.argv[2] not in ("asyncio", "uvloop"):
        sys.exit(__doc__)
    name, loop_kind = sys.argv[1], sys.argv[2]
    body, n = BENCHES[name]
    if len(sys.argv) > 3:
        n = int(sys.argv[3])
    if loop_kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sys.setrecursionlimit(10000)
    start = time.monotonic()
    operations = loop.run_until_complete(body(n))
    secs = time.monotonic() - start
    loop.close()
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"RESULT bench={name} impl={loop_kind} n={n} secs={secs:.3f} "
          f"rate={operations / secs:.0f} rss_kb={rss_kb}", flush=True)


if __name__ == "__main__":
    main()
