/*
 * quota: per-user counters (see quota.h).
 *
 * The table is a fixed array of buckets with chained entries, one entry per
 * uid that holds anything; an entry whose counts all drop to zero is freed,
 * so the table holds only users with work in the daemon. The number of
 * distinct uids is bounded by the machine's accounts (and each needs a
 * connection), so a fixed bucket count keeps lookups short.
 */
#include "daemon/core/quota.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "daemon/base/log.h"
#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "weft/error.h"

#define QUOTA_BUCKETS 256

struct quota_entry {
	struct quota_entry *next;
	uid_t uid;
	uint64_t held[QUOTA_KIND_COUNT];
};

/* Guards buckets and every entry's counts: a leaf lock held for a lookup. */
static pthread_mutex_t quota_lock = PTHREAD_MUTEX_INITIALIZER;
static struct quota_entry *buckets[QUOTA_BUCKETS];
static size_t user_count; /* under quota_lock */
/* Relaxed: each limit is a lone value written at start-up; nothing else is
 * published with it. */
static atomic_uint_least64_t limits[QUOTA_KIND_COUNT];

static const char *const options[QUOTA_KIND_COUNT] = {
	[QUOTA_PENDING] = "--max-pending-per-user",
	[QUOTA_WAITERS] = "--max-waiters-per-user",
	[QUOTA_CONNECTIONS] = "--max-connections-per-user",
	[QUOTA_BYTES] = "--max-bytes-per-user",
	[QUOTA_ITEM_BYTES] = "--max-item-bytes-per-user",
};

static const char *const what[QUOTA_KIND_COUNT] = {
	[QUOTA_PENDING] = "unfinished jobs",
	[QUOTA_WAITERS] = "waiting requests",
	[QUOTA_CONNECTIONS] = "connections",
	[QUOTA_BYTES] = "bytes of job arguments and results",
	[QUOTA_ITEM_BYTES] = "bytes of unread items",
};

static const char *const advice[QUOTA_KIND_COUNT] = {
	[QUOTA_PENDING] = "submit again when some have finished",
	[QUOTA_WAITERS] = "wait on several jobs in one request, or again later",
	[QUOTA_CONNECTIONS] = "close some connections",
	[QUOTA_BYTES] = "fetch and let expire finished results, or send smaller jobs",
	[QUOTA_ITEM_BYTES] = "read your generators' items (next), or give them a smaller buffer",
};

const char *quota_option(enum quota_kind kind)
{
	return kind < QUOTA_KIND_COUNT ? options[kind] : "?";
}

void quota_set_limit(enum quota_kind kind, uint64_t limit)
{
	if (kind < QUOTA_KIND_COUNT)
		atomic_store_explicit(&limits[kind], limit, memory_order_relaxed);
}

uint64_t quota_limit(enum quota_kind kind)
{
	return kind < QUOTA_KIND_COUNT
	               ? atomic_load_explicit(&limits[kind], memory_order_relaxed)
	               : 0;
}

static struct quota_entry **find_nolock(uid_t uid)
{
	struct quota_entry **link = &buckets[(unsigned)uid % QUOTA_BUCKETS];
	while (*link != NULL && (*link)->uid != uid)
		link = &(*link)->next;
	return link;
}

/* The entry of uid, made when missing. Caller holds quota_lock. */
static struct quota_entry *entry_nolock(uid_t uid)
{
	struct quota_entry **link = find_nolock(uid);
	if (*link == NULL) {
		*link = memory_zalloc(sizeof(**link));
		(*link)->uid = uid;
		user_count++;
	}
	return *link;
}

static void drop_if_empty_nolock(struct quota_entry **link)
{
	struct quota_entry *entry = *link;
	for (int kind = 0; kind < QUOTA_KIND_COUNT; kind++)
		if (entry->held[kind] != 0)
			return;
	*link = entry->next;
	free(entry);
	user_count--;
}

int quota_take(enum quota_kind kind, uid_t uid, uint64_t amount, struct problem *problem)
{
	uint64_t limit = quota_limit(kind);
	uint64_t held;

	if (kind >= QUOTA_KIND_COUNT)
		return WEFT_EINVAL;
	pthread_mutex_lock(&quota_lock);
	struct quota_entry *entry = entry_nolock(uid);
	held = entry->held[kind];
	if (limit != 0 && (amount > limit || held > limit - amount)) {
		drop_if_empty_nolock(find_nolock(uid));
		pthread_mutex_unlock(&quota_lock);
		if (problem != NULL)
			problem_set(problem, WEFT_EBUSY, NULL,
			            "uid %u holds %llu %s and may hold at most %llu (%s), so %llu "
			            "more cannot be taken; %s",
			            (unsigned)uid, (unsigned long long)held, what[kind],
			            (unsigned long long)limit, options[kind],
			            (unsigned long long)amount, advice[kind]);
		return WEFT_EBUSY;
	}
	entry->held[kind] = held + amount;
	pthread_mutex_unlock(&quota_lock);
	return WEFT_OK;
}

void quota_charge(enum quota_kind kind, uid_t uid, uint64_t amount)
{
	if (kind >= QUOTA_KIND_COUNT)
		return;
	pthread_mutex_lock(&quota_lock);
	entry_nolock(uid)->held[kind] += amount;
	pthread_mutex_unlock(&quota_lock);
}

void quota_give(enum quota_kind kind, uid_t uid, uint64_t amount)
{
	bool too_much = false;

	if (amount == 0 || kind >= QUOTA_KIND_COUNT)
		return;
	pthread_mutex_lock(&quota_lock);
	struct quota_entry **link = find_nolock(uid);
	if (*link == NULL || (*link)->held[kind] < amount) {
		too_much = true;
		if (*link != NULL)
			(*link)->held[kind] = 0;
	} else {
		(*link)->held[kind] -= amount;
	}
	if (*link != NULL)
		drop_if_empty_nolock(link);
	pthread_mutex_unlock(&quota_lock);
	if (too_much)
		log_error("quota: uid %u gave back more %s than it held (a bug)", (unsigned)uid,
		          what[kind]);
}

uint64_t quota_held(enum quota_kind kind, uid_t uid)
{
	uint64_t held = 0;

	if (kind >= QUOTA_KIND_COUNT)
		return 0;
	pthread_mutex_lock(&quota_lock);
	struct quota_entry **link = find_nolock(uid);
	if (*link != NULL)
		held = (*link)->held[kind];
	pthread_mutex_unlock(&quota_lock);
	return held;
}

size_t quota_users(void)
{
	pthread_mutex_lock(&quota_lock);
	size_t users = user_count;
	pthread_mutex_unlock(&quota_lock);
	return users;
}

void quota_reset(void)
{
	pthread_mutex_lock(&quota_lock);
	for (size_t i = 0; i < QUOTA_BUCKETS; i++) {
		while (buckets[i] != NULL) {
			struct quota_entry *next = buckets[i]->next;
			free(buckets[i]);
			buckets[i] = next;
		}
	}
	user_count = 0;
	pthread_mutex_unlock(&quota_lock);
}
