# The seed's download of many URLs with aiohttp + asyncio: N concurrent GETs of one URL.
# Usage: python3 aiohttp_get.py URL N ; prints the wall seconds.
import asyncio
import sys
import time

import aiohttp


async def main(url, count):
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one():
            async with session.get(url) as response:
                return await response.read()
        started = time.monotonic()
        bodies = await asyncio.gather(*(one() for _ in range(count)))
        elapsed = time.monotonic() - started
    assert all(body == b"slow" for body in bodies)
    print(f"{elapsed:.3f}")


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
