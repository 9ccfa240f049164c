#!/usr/bin/env bash
# sql: 10,000 "SELECT 1" as weft sql.query jobs (batches of 1000) against PostgreSQL and MariaDB,
# beside asyncpg and aiomysql (python3-asyncpg, python3-aiomysql), over TCP on 127.0.0.1.
# Size: SQL_QUERIES (10000).
set -u
: "${WEFT_BUILD:?run me through bench/run or make bench (WEFT_BUILD is not set)}"
WEFTD="$WEFT_BUILD/weftd" WEFT_SOURCE="$(cd "$(dirname "$0")/../.." && pwd)" \
	timeout 600 "$WEFT_BUILD/bench/io/sql_bench" "${SQL_QUERIES:-10000}"
