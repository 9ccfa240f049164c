/*
 * weft_await_job (include/weft/jobs.h): task code waits for another job
 * without holding its worker, through a job watch and a oneshot.
 */
#include <stdlib.h>

#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/core/outcome.h"
#include "daemon/sched/runner.h"
#include "daemon/runtime/runtime.h"
#include "weft/jobs.h"

/* A registration on the awaited job; heap memory, because the task may stop
 * waiting (timeout, cancel) before the job ends: whoever gets to it last —
 * the notification, or the task after a successful unwatch — frees it. */
struct job_waiter {
	struct job_watch watch; /* first: the watch is the struct */
	weft_oneshot *done;     /* a reference */
};

static void on_awaited_job_finished(struct job_watch *watch, struct job *job)
{
	(void)job;
	struct job_waiter *waiter = (struct job_waiter *)watch;
	weft_oneshot_set(waiter->done, WEFT_OK, NULL);
	weft_oneshot_release(waiter->done);
	free(waiter);
}

int weft_await_job(uint64_t id, double timeout_seconds, json_t **outcome)
{
	if (weft_task_current() == NULL)
		return WEFT_EINVAL;
	struct job *job = jobs_find(runner_jobs(), id);
	if (job == NULL)
		return WEFT_EUNKNOWNID;
	weft_oneshot *done;
	if (weft_oneshot_new(&done) != WEFT_OK) {
		job_unref(job);
		return WEFT_ENOMEM;
	}
	struct job_waiter *waiter = memory_zalloc(sizeof(*waiter));
	waiter->watch.notify = on_awaited_job_finished;
	waiter->done = weft_oneshot_retain(done);
	int rv = WEFT_OK;
	if (jobs_watch(runner_jobs(), job, &waiter->watch)) {
		rv = weft_oneshot_await(done, timeout_seconds);
		if (rv != WEFT_OK && jobs_unwatch(runner_jobs(), job, &waiter->watch)) {
			weft_oneshot_release(waiter->done);
			free(waiter);
		}
		/* Otherwise the notification has run or is running: it frees the waiter. */
	} else {
		weft_oneshot_release(waiter->done);
		free(waiter);
	}
	if (rv == WEFT_OK && outcome != NULL) {
		json_t *reply = outcome_reply(runner_jobs(), job);
		json_object_del(reply, "ok");
		*outcome = reply;
	}
	weft_oneshot_release(done);
	job_unref(job);
	return rv;
}
