/*
 * weft_yield_item; see generator.h and include/weft/jobs.h.
 *
 * A paused producer waits on a oneshot that items_push keeps and sets when
 * the reader made room or the job finished; then it pushes again. A task
 * awaits it (cancellation wakes it: it then tells the stream to forget the
 * oneshot); a pool thread joins it.
 */
#include "daemon/core/generator.h"

#include <stdlib.h>

#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "daemon/base/watch.h"
#include "daemon/core/items.h"
#include "daemon/core/jobs.h"
#include "daemon/runtime/runtime.h"
#include "weft/jobs.h"

/* Set once by generator_init before any job runs; read after. */
static struct jobs *table;
/* The job the pool thread's current call runs for. Thread-local: pool
 * threads never move, unlike tasks. */
static _Thread_local struct job *thread_job;

void generator_init(struct jobs *jobs)
{
	table = jobs;
}

void generator_enter(struct job *job)
{
	thread_job = job;
}

/* A paused producer's registration: heap memory, because the producer may
 * stop waiting (cancelled) while the notification runs; whoever gets to it
 * last -- the notification, or the producer after items_forget_space
 * removed it -- frees it. */
struct space_wait {
	struct watch watch; /* first: the watch is the struct */
	weft_oneshot *done; /* a reference */
};

static void on_space(struct watch *watch)
{
	struct space_wait *wait = (struct space_wait *)watch;
	weft_oneshot_set(wait->done, WEFT_OK, NULL);
	weft_oneshot_release(wait->done);
	free(wait);
}

int weft_yield_item(json_t *item)
{
	bool in_task = weft_task_current() != NULL;
	struct job *job = in_task ? weft_task_local() : thread_job;
	if (job == NULL || table == NULL) {
		json_decref(item);
		return WEFT_EINVAL;
	}
	struct items *items = jobs_items(table, job);
	for (;;) {
		weft_oneshot *done;
		if (weft_oneshot_new(&done) != WEFT_OK) {
			json_decref(item);
			return WEFT_ENOMEM;
		}
		struct space_wait *wait = memory_zalloc(sizeof(*wait));
		wait->watch.notify = on_space;
		wait->done = weft_oneshot_retain(done);
		bool paused;
		json_t *back = NULL;
		struct problem problem;
		problem_init(&problem);
		int rv = items_push(items, item, &wait->watch, &paused, &back, &problem);
		if (rv != WEFT_OK || !paused) {
			weft_oneshot_release(wait->done);
			free(wait);
			weft_oneshot_release(done);
			return rv;
		}
		item = back;
		rv = in_task ? weft_oneshot_await(done, WEFT_FOREVER)
		             : runtime_join_oneshot(done, WEFT_FOREVER);
		if (rv != WEFT_OK && items_forget_space(items, &wait->watch)) {
			weft_oneshot_release(wait->done);
			free(wait);
		}
		/* Otherwise the notification has run or is running: it frees the wait. */
		weft_oneshot_release(done);
		if (rv != WEFT_OK) {
			json_decref(item);
			return rv;
		}
	}
}
