# N GETs through redis.asyncio (python3-redis), C of them at a time, on a unix socket.
# Usage: python3 redis_asyncio_get.py SOCKET N C ; prints the wall seconds.
import asyncio
import sys
import time

import redis.asyncio as redis


async def main(path, count, concurrency):
    client = redis.Redis(unix_socket_path=path, max_connections=concurrency)
    await client.set("k", "v")
    per = count // concurrency

    async def worker():
        for _ in range(per):
            assert await client.get("k") == b"v"

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    await client.close()
    print(f"{elapsed:.3f}")


asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
