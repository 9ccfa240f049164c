# N "SELECT 1" through asyncpg (python3-asyncpg) with a pool of C connections.
# Usage: python3 asyncpg_select.py HOST PORT USER DATABASE N C ; prints the wall seconds,
# or "SKIP: why" when asyncpg is not installed.
import asyncio
import sys
import time

try:
    import asyncpg
except ImportError as error:
    print(f"SKIP: {error}")
    sys.exit(0)


async def main(host, port, user, database, count, concurrency):
    pool = await asyncpg.create_pool(host=host, port=port, user=user, database=database,
                                     min_size=concurrency, max_size=concurrency)
    per = count // concurrency

    async def worker():
        for _ in range(per):
            async with pool.acquire() as connection:
                assert await connection.fetchval("SELECT 1") == 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    await pool.close()
    print(f"{elapsed:.3f}")


asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]),
                 int(sys.argv[6])))
