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

#ifdef __cplusplus
}
#endif
#endif
