/*
 * Jobs, from task code inside weftd: a coroutine task waits for any job or
 * bare future of the daemon, as `result` does for a client, with its worker
 * free to run other tasks meanwhile.
 */
#ifndef WEFT_JOBS_H
#define WEFT_JOBS_H

#include <stdint.h>

#include <jansson.h>

#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Waits until job `id` has finished, at most timeout_seconds (WEFT_FOREVER:
 * no limit), and gives its outcome in *outcome (may be NULL): a new reference
 * to {"id", "state", "result"} or {"id", "state", "error"}. Task only.
 * Returns WEFT_OK (whatever the job's own outcome), WEFT_EUNKNOWNID,
 * WEFT_ETIMEOUT (the job goes on), WEFT_ECANCELED (this task was cancelled),
 * WEFT_EINVAL outside a task.
 */
int weft_await_job(uint64_t id, double timeout_seconds, json_t **outcome);

/*
 * Yields one item of the current job's stream (a generator: clients read the
 * items with `next` while the job runs; PROTOCOL.md). item is stolen, even on
 * failure. Called from the body of a task job (executor "task") or from a
 * thread function on its pool thread. Blocks while the job is as far ahead of
 * its reader as its `buffer` or the per-job byte budget allows
 * (backpressure): a task suspends (its worker runs other tasks), a pool
 * thread waits. Returns WEFT_OK; WEFT_ECANCELED (the job was cancelled or
 * timed out, or the task was cancelled, while it waited); WEFT_ETOOLARGE
 * (larger than --max-item-bytes); WEFT_EBUSY (the owner's
 * --max-item-bytes-per-user is used up by unread items); WEFT_EINVAL outside
 * a job. (weft_yield in task.h is another thing: it lets other tasks run.)
 */
int weft_yield_item(json_t *item);

#ifdef __cplusplus
}
#endif
#endif
