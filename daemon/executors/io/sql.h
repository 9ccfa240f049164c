/*
 * sql.query: one SQL statement with bound parameters on a worker loop,
 * through libpq's non-blocking API, with no thread per query (sql.c).
 *
 *   {"url": "postgresql://user:pw@127.0.0.1:5432/db", "sql": "SELECT $1::int",
 *    "params": [41]}  ->  {"columns": [...], "rows": [[...]], "affected": N}
 *
 * Connections are pooled per worker and per (url, owner), at most
 * SQL_POOL_MAX of them per worker for one (url, owner): more jobs wait for
 * one to be free (pool.h). A connection runs one query at a time; idle ones
 * close after pool_idle_seconds(). A cancelled or timed-out query is cancelled on the
 * server (PQcancel, sent from the thread pool since it blocks) and its
 * connection closed.
 *
 * What a job may reach: a TCP server at a numeric address or a host name
 * (resolved off the loop first, resolve.h, and connected to by address:
 * libpq would resolve it synchronously); a unix socket directory
 * (?host=/dir) only when the job's owner is the daemon's own user, since the
 * server's peer authentication would see the daemon's uid (root). The user
 * defaults to the owner's account name; no password file, service file or
 * client certificate of the daemon's is ever read (passfile is /dev/null).
 * mysql:// and mariadb:// URLs go to sql_mysql.h, under the same rules.
 */
#ifndef SQL_H
#define SQL_H

#include "daemon/executors/io/sql_limits.h"

struct event_base;
struct function;

extern const struct function sql_query_function;

/* A worker's thread, as it stops: closes its connections (daemon.c). */
void sql_worker_exit(struct event_base *base);

#endif
