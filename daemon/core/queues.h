/*
 * Named queues: a concurrency limit shared by the jobs that name the queue
 * (`queue` in submit): at most `max` of them run at once, the rest stay
 * queued, by priority and then first come first served. A queue can be paused
 * (running jobs finish, queued ones wait) and resumed. Queues are made by
 * `queue.set` or `--queue NAME=MAX` and live as long as the daemon.
 * Any thread.
 */
#ifndef QUEUES_H
#define QUEUES_H

#include <jansson.h>
#include <stdbool.h>

struct slots;

#define QUEUES_NAME_MAX 64

/* Makes the queue, or changes its limit (max >= 1). WEFT_OK or WEFT_EINVAL. */
int queues_set(const char *name, unsigned max);

/* The queue's gate, or NULL when there is no such queue. Borrowed: valid until
 * queues_fini. */
struct slots *queues_find(const char *name);

/* Pauses or resumes a queue. WEFT_OK, or WEFT_EUNKNOWNID when there is none. */
int queues_pause(const char *name, bool paused);

/* Every queue: [{"name","max","running","queued","paused"}], a new reference. */
json_t *queues_to_json(void);

/* Frees every queue. Main thread, once no job can use them. */
void queues_fini(void);

#endif
