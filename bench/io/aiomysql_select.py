# N "SELECT 1" through aiomysql (python3-aiomysql) with a pool of C connections.
# Usage: python3 aiomysql_select.py HOST PORT USER PASSWORD DATABASE N C ; prints the wall
# seconds, or "SKIP: why" when aiomysql is not installed.
import asyncio
import sys
import time

try:
    import aiomysql
except ImportError as error:
    print(f"SKIP: {error}")
    sys.exit(0)


async def main(host, port, user, password, database, count, concurrency):
    pool = await aiomysql.create_pool(host=host, port=port, user=user, password=password,
                                      db=database, minsize=concurrency, maxsize=concurrency)
    per = count // concurrency

    async def worker():
        for _ in range(per):
            async with pool.acquire() as connection:
                async with connection.cursor() as cursor:
                    await cursor.execute("SELECT 1")
                    assert (await cursor.fetchone())[0] == 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    pool.close()
    await pool.wait_closed()
    print(f"{elapsed:.3f}")


asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5],
                 int(sys.argv[6]), int(sys.argv[7])))
