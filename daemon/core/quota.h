/*
 * quota: what each user holds of the daemon's shared limits, so that no user
 * can take them all. A small table keyed by uid counts, per user, the jobs
 * not finished yet, the requests waiting (long polls), the connections open
 * and the bytes of job arguments and results held; each has a per-user limit
 * (--max-pending-per-user, --max-waiters-per-user,
 * --max-connections-per-user, --max-bytes-per-user) beside the daemon-wide
 * one. Every user is counted the same way, root and admins included: the
 * operator sets the limits.
 *
 * Exactly once: each count is raised where the thing begins and lowered at
 * the single place it ends -- a job in jobs_create and in the call of
 * jobs_finish that finishes it; a waiter when it starts and when its last
 * reference goes (waiters.c); a connection when its pipe is added and when it
 * is forgotten (server.c).
 *
 * Threads: every function may be called from any thread. One mutex guards
 * the table; it is a leaf lock (nothing is called while it is held) and it is
 * held for a hash lookup only. The limits are atomics written at start-up.
 */
#ifndef QUOTA_H
#define QUOTA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct problem;

enum quota_kind {
	QUOTA_PENDING,     /* jobs not finished (waiting, queued, running, pending) */
	QUOTA_WAITERS,     /* requests waiting for jobs */
	QUOTA_CONNECTIONS, /* connections open */
	QUOTA_BYTES,       /* bytes of job arguments and results held */
	QUOTA_ITEM_BYTES,  /* bytes of items yielded by jobs and not read yet (items.h) */
	QUOTA_KIND_COUNT
};

/* The option that sets a kind's per-user limit ("--max-pending-per-user"); static. */
const char *quota_option(enum quota_kind kind);

/* Sets a kind's per-user limit; 0 means none. Main thread, at start-up,
 * before requests arrive (a later call is safe, merely racy for requests in
 * flight). */
void quota_set_limit(enum quota_kind kind, uint64_t limit);
uint64_t quota_limit(enum quota_kind kind);

/*
 * Takes `amount` of a kind for uid when the user stays within the limit.
 * Returns WEFT_OK, WEFT_EINVAL for a kind out of range, or WEFT_EBUSY with the problem filled (when problem is not
 * NULL): the message names the quota's option, the user and what they hold.
 * Any thread.
 */
int quota_take(enum quota_kind kind, uid_t uid, uint64_t amount, struct problem *problem);

/* Adds without a check (work made on behalf of admitted work, e.g. a gather's
 * children, counts against its owner without being refused). Any thread. */
void quota_charge(enum quota_kind kind, uid_t uid, uint64_t amount);

/* Gives back what quota_take or quota_charge added. Any thread. Giving more
 * than is held is a bug: it is logged and the count stops at 0. */
void quota_give(enum quota_kind kind, uid_t uid, uint64_t amount);

/* What uid holds of a kind now (0 for a user the table does not know). */
uint64_t quota_held(enum quota_kind kind, uid_t uid);

/* Users the table holds now (those with anything counted). */
size_t quota_users(void);

/* Empties the table (tests; exit). No other thread may use it meanwhile. */
void quota_reset(void);

#endif
