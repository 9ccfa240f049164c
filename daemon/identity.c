/* See identity.h. A short list under one lock: daemons serve few users. */
#include "daemon/identity.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/memory.h"
#include "daemon/proc.h"
#include "weft/error.h"

struct cached {
	struct cached *next;
	int64_t uid;
	int64_t gid;
	struct proc_identity *identity;
};

/* Guards the list; held across the lookup so one uid is looked up once. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached *cache;

const struct proc_identity *identity_get(int64_t uid, int64_t gid)
{
	pthread_mutex_lock(&cache_lock);
	struct cached *entry = cache;
	while (entry != NULL && (entry->uid != uid || entry->gid != gid))
		entry = entry->next;
	if (entry == NULL) {
		struct proc_identity *identity;
		bool switch_to = geteuid() == 0 && uid != 0;
		if (proc_identity_lookup((uid_t)uid, (gid_t)gid, switch_to, &identity) == WEFT_OK) {
			entry = memory_zalloc(sizeof(*entry));
			entry->uid = uid;
			entry->gid = gid;
			entry->identity = identity;
			entry->next = cache;
			cache = entry;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return entry != NULL ? entry->identity : NULL;
}

void identity_fini(void)
{
	pthread_mutex_lock(&cache_lock);
	while (cache != NULL) {
		struct cached *next = cache->next;
		proc_identity_free(cache->identity);
		free(cache);
		cache = next;
	}
	pthread_mutex_unlock(&cache_lock);
}
