/*
 * redis.command: one Redis command on a worker loop through hiredis' async
 * API, with no thread per command (redis.c).
 *
 * Connections are pooled per worker and per (url, owner): a job takes an idle
 * connection of its owner to the same URL, or opens one while the pool has
 * fewer than REDIS_POOL_MAX, or waits in order; it gives it back when its
 * reply came; one command at a time on a connection, so cancelling
 * a job (or its timeout) closes that connection alone, which the server sees
 * at once (a BLPOP stops waiting). Idle connections close after
 * pool_idle_seconds() (pool.h).
 *
 * What a job may reach: a TCP address, numeric or a host name (resolved off
 * the loop first, resolve.h: hiredis would resolve it synchronously and
 * block the loop); a unix socket only when the job's owner is the daemon's own user
 * (root on a root daemon), since the daemon would otherwise connect with
 * rights the owner may not have.
 */
#ifndef REDIS_H
#define REDIS_H

struct event_base;
struct function;

extern const struct function redis_command_function;

/* Connections per worker for one (url, owner); more jobs wait in order for
 * one (a blocking command such as BLPOP holds its connection meanwhile). */
#define REDIS_POOL_MAX 64
/* Largest reply a job may ask for (max_size), and the default. */
#define REDIS_REPLY_MAX (16u << 20)
#define REDIS_REPLY_DEFAULT (1u << 20)

/* A worker's thread, as it stops: closes its connections (daemon.c). */
void redis_worker_exit(struct event_base *base);

#endif
