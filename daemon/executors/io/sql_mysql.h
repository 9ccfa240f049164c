/*
 * sql.query's MySQL/MariaDB half (mysql:// and mariadb:// URLs) on
 * Connector/C's non-blocking API (sql_mysql.c); sql.c hands those URLs here.
 * Same pools, limits, timeouts and trust rules as sql.h says for PostgreSQL:
 * numeric addresses or host names (resolved off the loop) over TCP; a unix socket (?socket=/path)
 * only for the daemon's own user, since MariaDB's unix_socket
 * authentication would see root; the user defaults to the owner's account
 * name; LOAD DATA LOCAL is off. A cancelled or timed-out query is stopped on
 * the server with KILL QUERY, sent from the thread pool.
 */
#ifndef SQL_MYSQL_H
#define SQL_MYSQL_H

#include <stdbool.h>

struct event_base;
struct job_attempt;
struct problem;

/* Whether url is one of this module's (mysql://, mariadb://). Any thread. */
bool sql_mysql_url_is_mine(const char *url);
/* Checks such a URL at submit: WEFT_OK or WEFT_EBADARGS with the problem. Any thread. */
int sql_mysql_url_check(const char *url, struct problem *problem);

/* Connector/C's global set-up and tear-down. Main thread, before the workers
 * start / after they stopped. */
int sql_mysql_init(void);
void sql_mysql_fini(void);

/* sql.query's start and stop for these URLs (functions.h). The attempt's worker. */
void sql_mysql_start(struct job_attempt *attempt);
void sql_mysql_stop(struct job_attempt *attempt);

/* A worker's thread, as it stops: closes its connections. */
void sql_mysql_worker_exit(struct event_base *base);

#endif
