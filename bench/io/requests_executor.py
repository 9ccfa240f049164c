# The seed's first version: requests in loop.run_in_executor (the default thread pool).
# Usage: python3 requests_executor.py URL N ; prints the wall seconds.
import asyncio
import sys
import time

import requests


async def main(url, count):
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    responses = await asyncio.gather(
        *(loop.run_in_executor(None, requests.get, url) for _ in range(count)))
    elapsed = time.monotonic() - started
    assert all(response.content == b"slow" for response in responses)
    print(f"{elapsed:.3f}")


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
