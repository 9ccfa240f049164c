/* Named queues; see queues.h. A short list under one lock: queues are few,
 * and looked up once per job at submit time. */
#include "daemon/core/queues.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/memory.h"
#include "daemon/core/slots.h"
#include "weft/error.h"

struct queue {
	struct queue *next;
	char *name;
	struct slots *gate;
};

static pthread_mutex_t queues_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the list */
static struct queue *queues;

static struct queue *find_locked(const char *name)
{
	struct queue *queue = queues;
	while (queue != NULL && strcmp(queue->name, name) != 0)
		queue = queue->next;
	return queue;
}

int queues_set(const char *name, unsigned max)
{
	if (max == 0 || name[0] == '\0' || strlen(name) > QUEUES_NAME_MAX)
		return WEFT_EINVAL;
	pthread_mutex_lock(&queues_lock);
	struct queue *queue = find_locked(name);
	int rv = WEFT_OK;
	if (queue == NULL) {
		queue = memory_zalloc(sizeof(*queue));
		if ((rv = slots_new(max, &queue->gate)) != WEFT_OK) {
			free(queue);
		} else {
			queue->name = memory_strdup(name);
			queue->next = queues;
			queues = queue;
		}
		pthread_mutex_unlock(&queues_lock);
		return rv;
	}
	struct slots *gate = queue->gate;
	pthread_mutex_unlock(&queues_lock);
	/* Outside our lock: raising the limit runs the wakes of the granted jobs. */
	return slots_set_limit(gate, max);
}

struct slots *queues_find(const char *name)
{
	pthread_mutex_lock(&queues_lock);
	struct queue *queue = find_locked(name);
	struct slots *gate = queue != NULL ? queue->gate : NULL;
	pthread_mutex_unlock(&queues_lock);
	return gate;
}

int queues_pause(const char *name, bool paused)
{
	struct slots *gate = queues_find(name);
	if (gate == NULL)
		return WEFT_EUNKNOWNID;
	slots_set_paused(gate, paused);
	return WEFT_OK;
}

json_t *queues_to_json(void)
{
	json_t *list = json_array();
	pthread_mutex_lock(&queues_lock);
	for (struct queue *queue = queues; queue != NULL; queue = queue->next)
		json_array_append_new(
			list, json_pack("{s:s, s:i, s:i, s:i, s:b}", "name", queue->name, "max",
		                        (int)slots_limit(queue->gate), "running",
		                        (int)slots_held(queue->gate), "queued",
		                        (int)slots_queued(queue->gate), "paused",
		                        slots_paused(queue->gate)));
	pthread_mutex_unlock(&queues_lock);
	return list;
}

void queues_fini(void)
{
	pthread_mutex_lock(&queues_lock);
	while (queues != NULL) {
		struct queue *next = queues->next;
		slots_free(queues->gate);
		free(queues->name);
		free(queues);
		queues = next;
	}
	pthread_mutex_unlock(&queues_lock);
}
