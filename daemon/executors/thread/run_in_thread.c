/*
 * weft_run_in_thread: a pool item and a one-shot, both living for exactly one
 * call. The item sits on the calling task's stack, which is safe because the
 * task waits until the pool is done with it, even when cancelled. The pool's
 * done callback holds its own reference to the one-shot, since setting it may
 * resume the task (on another thread) before weft_oneshot_set returns.
 */
#include "daemon/executors/thread/run_in_thread.h"

#include <stdatomic.h>

#include "daemon/executors/thread/threadpool.h"
#include "weft/executor.h"

/* Set at start-up before any task runs, read by tasks; acquire/release so a
 * task sees a fully made pool. */
static _Atomic(struct threadpool *) offload_pool;

struct offload_call {
	struct threadpool_work work; /* first: the pool hands &work back */
	weft_thread_fn fn;
	void *argument;
	void *result;
	weft_oneshot *oneshot;
	/* Set by done once it no longer touches the call (release: the task then
	 * sees `result`); read by the task (acquire). */
	atomic_bool finished;
};

void run_in_thread_set_pool(struct threadpool *pool)
{
	atomic_store_explicit(&offload_pool, pool, memory_order_release);
}

/* Pool thread. */
static void offload_run(struct threadpool_work *work)
{
	struct offload_call *call = (struct offload_call *)work;
	call->result = call->fn(call->argument);
}

/* Pool thread, or the cancelling thread for a call that never ran. The call
 * is not touched after the one-shot is set: the task may be gone by then. */
static void offload_done(struct threadpool_work *work)
{
	struct offload_call *call = (struct offload_call *)work;
	weft_oneshot *oneshot = call->oneshot;
	int outcome = work->cancelled ? WEFT_ECANCELED : WEFT_OK;
	atomic_store_explicit(&call->finished, true, memory_order_release);
	/* From here on the call may be gone. */
	weft_oneshot_set(oneshot, outcome, NULL);
	weft_oneshot_release(oneshot);
}

int weft_run_in_thread(weft_thread_fn fn, void *argument, void **result_out)
{
	struct threadpool *pool = atomic_load_explicit(&offload_pool, memory_order_acquire);
	if (pool == NULL || fn == NULL || weft_task_current() == NULL)
		return WEFT_EINVAL;
	struct offload_call call = {.fn = fn, .argument = argument};
	if (weft_oneshot_new(&call.oneshot) != WEFT_OK)
		return WEFT_ENOMEM;
	weft_oneshot_retain(call.oneshot); /* the done callback's reference */
	threadpool_work_init(&call.work, offload_run, offload_done);
	int rv = threadpool_submit(pool, &call.work);
	if (rv != WEFT_OK) {
		weft_oneshot_release(call.oneshot);
		weft_oneshot_release(call.oneshot);
		return rv;
	}
	rv = weft_oneshot_await(call.oneshot, WEFT_FOREVER);
	if (!atomic_load_explicit(&call.finished, memory_order_acquire)) {
		/* Only the task's own cancellation ends a wait without a time limit
		 * early. A queued call is dropped now; a running one is waited for,
		 * since it still uses `argument` and this stack frame. */
		threadpool_cancel(pool, &call.work);
		while (!atomic_load_explicit(&call.finished, memory_order_acquire))
			weft_oneshot_await(call.oneshot, WEFT_FOREVER);
		rv = WEFT_ECANCELED;
	}
	if (result_out != NULL)
		*result_out = call.result;
	weft_oneshot_release(call.oneshot);
	return rv;
}
