/*
 * task: the task API of include/weft/task.h, completions, and the waits built on them.
 *
 * Every blocking call has the same shape (see the states in runtime_internal.h):
 *   task_park_begin   state PARKING, wake_claimed 0: from now on one waker may claim the task
 *   publish           the task's waiter goes where a waker will find it (a completion, a notify)
 *   task_park_finish  the timer/fd event goes on this worker's base, a pending cancel wakes the
 *                     task at once, and the task switches to the scheduler, which commits the park
 *   unpublish         after a wake other than READY, the waiter is taken back under the same lock
 *                     the waker uses, so no waker can touch it after the call returns
 * Cancellation: weft_cancel sets cancel_requested (seq_cst) and then tries to wake the task; a
 * parking task resets wake_claimed (seq_cst) before it reads cancel_requested. Whichever order the
 * two threads run in, one of them sees the other, so a cancel is never lost.
 */
#include "daemon/runtime/runtime_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- completions ---- */

void completion_init(completion *target)
{
	atomic_flag_clear(&target->lock);
	atomic_init(&target->done, false);
	target->error = WEFT_OK;
	target->value = 0;
	target->result = NULL;
	target->waiters = NULL;
}

void completion_lock(completion *target)
{
	while (atomic_flag_test_and_set_explicit(&target->lock, memory_order_acquire)) {
#if defined(__x86_64__)
		__asm__ volatile("pause");
#elif defined(__aarch64__)
		__asm__ volatile("yield");
#endif
	}
}

void completion_unlock(completion *target)
{
	atomic_flag_clear_explicit(&target->lock, memory_order_release);
}

/* The lock is held: the caller may have decided under it that it is the one
 * that finishes (weft_oneshot_set), so the decision and the finish are one
 * critical section. */
static void completion_finish_locked(completion *target)
{
	atomic_store_explicit(&target->done, true, memory_order_release);
	completion_waiter *waiters = target->waiters;
	target->waiters = NULL;
	/* Waking under the lock: a waiter that timed out takes this lock before it returns, so its
	 * node (on its stack) outlives our use of it. Waking never blocks. */
	for (completion_waiter *each = waiters; each != NULL;) {
		completion_waiter *next = each->next;
		if (each->task != NULL) {
			task_wake(each->task, TASK_WAKE_READY, 0);
		} else {
			thread_waiter *thread = each->thread;
			pthread_mutex_lock(&thread->lock);
			thread->signalled = true;
			pthread_cond_signal(&thread->cond);
			pthread_mutex_unlock(&thread->lock);
		}
		each = next;
	}
}

void completion_finish(completion *target)
{
	completion_lock(target);
	completion_finish_locked(target);
	completion_unlock(target);
}

static void completion_remove_locked(completion *target, completion_waiter *gone)
{
	for (completion_waiter **link = &target->waiters; *link != NULL; link = &(*link)->next) {
		if (*link == gone) {
			*link = gone->next;
			return;
		}
	}
}

/* ---- tasks ---- */

static weft_task *task_self(void)
{
	worker *current = runtime_current_worker();
	return current != NULL ? runtime_worker_task(current) : NULL;
}

int task_new(runtime *rt, weft_task_fn fn, void *argument, const weft_spawn_options *options,
	     weft_task **task_out)
{
	/* The calling thread's worker when it is one of rt's, else NULL: looked up once. */
	worker *current = runtime_current_worker();
	if (current != NULL && runtime_of_worker(current) != rt)
		current = NULL;
	weft_task *task = runtime_task_alloc(current, sizeof *task);
	if (task == NULL)
		return WEFT_ENOMEM;
	task->next = NULL;
	task->saved.stack_pointer = NULL;
	task->stack = NULL;
	task->rt = rt;
	task->fn = fn;
	task->argument = argument;
	task->name = options != NULL && options->name != NULL ? options->name : "task";
	task->id = current != NULL ? runtime_next_id(current) : runtime_outside_id(rt);
	task->on_done = options != NULL ? options->on_done : NULL;
	task->on_done_argument = options != NULL ? options->on_done_argument : NULL;
	task->local = options != NULL ? options->local : NULL;
	task->event = NULL;
	task->event_owner = NULL;
	atomic_init(&task->state, TASK_NEW);
	/* 1 while not waiting: stray wakes of a running or new task are ignored. */
	atomic_init(&task->wake_claimed, 1);
	task->wake_reason = 0;
	task->ready_events = 0;
	task->switch_reason = 0;
	atomic_init(&task->cancel_requested, false);
	task->stackless = false;
	task->started = false;
	task->sleep_seconds = 0;
	atomic_init(&task->references, 1); /* the runtime's, dropped at completion */
	completion_init(&task->done);
	task->asan_fake_stack = NULL;
	runtime_task_started(rt, current);
	*task_out = task;
	return WEFT_OK;
}

weft_task *weft_task_retain(weft_task *task)
{
	atomic_fetch_add_explicit(&task->references, 1, memory_order_relaxed);
	return task;
}

void weft_task_release(weft_task *task)
{
	if (task == NULL)
		return;
	/* acq_rel: every use of the task by other holders happens before the free. */
	if (atomic_fetch_sub_explicit(&task->references, 1, memory_order_acq_rel) != 1)
		return;
	if (task->event != NULL)
		free(task->event);
	json_decref(task->done.result);
	runtime_task_dispose(task);
}

void task_complete(weft_task *task, int error)
{
	runtime *rt = task->rt;
	task->done.error = error;
	if (atomic_load_explicit(&task->references, memory_order_acquire) == 1) {
		/* Only the runtime's reference: no handle exists, so nobody waits and nobody can
		 * start to (a handle could only come from on_done, below, which sees it done). */
		atomic_store_explicit(&task->done.done, true, memory_order_release);
	} else {
		completion_finish(&task->done);
	}
	if (task->on_done != NULL)
		task->on_done(task, task->on_done_argument);
	runtime_task_finished(rt);
	weft_task_release(task);
}

bool task_wake(weft_task *task, int reason, short events)
{
	if (atomic_exchange(&task->wake_claimed, 1) != 0)
		return false; /* already woken, or not waiting */
	task->wake_reason = reason;
	task->ready_events = events;
	/* Most wakes find the task PARKED, which only the claimer may change: no CAS then. */
	int expected = atomic_load_explicit(&task->state, memory_order_acquire);
	if (expected == TASK_PARKING &&
	    atomic_compare_exchange_strong(&task->state, &expected, TASK_NOTIFIED))
		return true; /* the scheduler that is parking it will requeue it */
	/* PARKED, and only we may move it now. */
	atomic_store_explicit(&task->state, TASK_RUNNABLE, memory_order_relaxed);
	worker *owner = task->event_owner;
	if (owner == NULL) {
		scheduler_schedule(task->rt, task, true);
	} else if (owner == runtime_current_worker()) {
		event_del(task->event);
		task->event_owner = NULL;
		scheduler_schedule(task->rt, task, true);
	} else {
		scheduler_send_to_owner(owner, task);
	}
	return true;
}

static void task_event_callback(evutil_socket_t fd, short what, void *argument)
{
	(void)fd;
	weft_task *task = argument;
	if (task->stackless) {
		/* A sleep task's timer: finish it right here, on its worker, rather than queue it
		 * only to finish it. Claiming first, as any waker does, keeps a racing cancel out. */
		if (atomic_exchange(&task->wake_claimed, 1) != 0)
			return;
		task->event_owner = NULL;
		task_complete(task, WEFT_OK);
		return;
	}
	if (what & EV_TIMEOUT)
		task_wake(task, TASK_WAKE_TIMEOUT, 0);
	else
		task_wake(task, TASK_WAKE_READY, what);
}

static void task_park_begin(weft_task *task)
{
	atomic_store_explicit(&task->state, TASK_PARKING, memory_order_relaxed);
	/* seq_cst: ordered before the read of cancel_requested (see the top of this file). */
	atomic_store(&task->wake_claimed, 0);
}

/* Arms the wait's event on the current worker. Returns WEFT_OK or WEFT_ENOMEM. */
static int task_arm_event(weft_task *task, worker *current, int fd, short events,
			  double timeout_seconds)
{
	if (fd < 0 && timeout_seconds < 0)
		return WEFT_OK;
	if (task->event == NULL) {
		task->event = malloc(event_get_struct_event_size());
		if (task->event == NULL)
			return WEFT_ENOMEM;
	}
	event_assign(task->event, runtime_worker_base(current), fd, events, task_event_callback,
		     task);
	struct timeval limit;
	if (timeout_seconds >= 0) {
		if (timeout_seconds > 1e9)
			timeout_seconds = 1e9;
		limit.tv_sec = (time_t)timeout_seconds;
		limit.tv_usec = (suseconds_t)((timeout_seconds - (double)limit.tv_sec) * 1e6);
	}
	const struct timeval *timeout = NULL;
	if (timeout_seconds >= 0)
		timeout = runtime_common_timeout(current, &limit);
	if (event_add(task->event, timeout) != 0)
		return WEFT_EINTERNAL;
	task->event_owner = current;
	return WEFT_OK;
}

/* Switches out until woken; returns the wake reason. Stackful tasks only. */
static int task_park_finish(weft_task *task, int fd, short events, double timeout_seconds)
{
	worker *current = runtime_current_worker();
	if (task_arm_event(task, current, fd, events, timeout_seconds) != WEFT_OK) {
		/* Could not arm the timer: report a timeout now rather than wait forever. */
		task_wake(task, TASK_WAKE_TIMEOUT, 0);
	}
	if (atomic_load(&task->cancel_requested))
		task_wake(task, TASK_WAKE_CANCELED, 0);
	scheduler_switch_out(task, TASK_SWITCH_PARK);
	int reason = task->wake_reason;
	if (reason == TASK_WAKE_CANCELED)
		atomic_store(&task->cancel_requested, false); /* delivered once */
	return reason;
}

static int task_reason_to_error(int reason)
{
	switch (reason) {
	case TASK_WAKE_READY:
		return WEFT_OK;
	case TASK_WAKE_TIMEOUT:
		return WEFT_ETIMEOUT;
	default:
		return WEFT_ECANCELED;
	}
}

/* Waits on a completion from a task. */
static int task_await_completion(weft_task *self, completion *awaited, double timeout_seconds)
{
	if (atomic_load_explicit(&awaited->done, memory_order_acquire))
		return awaited->error;
	if (timeout_seconds == 0)
		return WEFT_ETIMEOUT;
	completion_waiter node = {.next = NULL, .task = self, .thread = NULL};
	task_park_begin(self);
	completion_lock(awaited);
	if (atomic_load_explicit(&awaited->done, memory_order_relaxed)) {
		completion_unlock(awaited);
		atomic_store(&self->wake_claimed, 1);
		atomic_store_explicit(&self->state, TASK_RUNNING, memory_order_relaxed);
		return awaited->error;
	}
	node.next = awaited->waiters;
	awaited->waiters = &node;
	completion_unlock(awaited);
	int reason = task_park_finish(self, -1, 0, timeout_seconds);
	if (reason == TASK_WAKE_READY)
		return awaited->error;
	completion_lock(awaited);
	completion_remove_locked(awaited, &node);
	completion_unlock(awaited);
	return task_reason_to_error(reason);
}

int weft_await(weft_task *task, double timeout_seconds)
{
	weft_task *self = task_self();
	if (self == NULL || task == NULL || task == self)
		return WEFT_EINVAL;
	return task_await_completion(self, &task->done, timeout_seconds);
}

int weft_sleep(double seconds)
{
	weft_task *self = task_self();
	if (self == NULL || isnan(seconds))
		return WEFT_EINVAL;
	if (seconds <= 0)
		return weft_yield();
	task_park_begin(self);
	int reason = task_park_finish(self, -1, 0, seconds);
	return reason == TASK_WAKE_CANCELED ? WEFT_ECANCELED : WEFT_OK;
}

int weft_yield(void)
{
	weft_task *self = task_self();
	if (self == NULL)
		return WEFT_EINVAL;
	bool expected = true;
	if (atomic_compare_exchange_strong(&self->cancel_requested, &expected, false))
		return WEFT_ECANCELED;
	scheduler_switch_out(self, TASK_SWITCH_YIELD);
	return WEFT_OK;
}

int weft_wait_fd(int fd, short events, double timeout_seconds, short *ready_out)
{
	weft_task *self = task_self();
	if (self == NULL || fd < 0 || (events & (EV_READ | EV_WRITE)) == 0 || isnan(timeout_seconds))
		return WEFT_EINVAL;
	task_park_begin(self);
	int reason = task_park_finish(self, fd, (short)(events & (EV_READ | EV_WRITE)),
				      timeout_seconds);
	if (reason == TASK_WAKE_READY && ready_out != NULL)
		*ready_out = self->ready_events;
	return task_reason_to_error(reason);
}

void weft_cancel(weft_task *task)
{
	if (task == NULL)
		return;
	atomic_store(&task->cancel_requested, true);
	task_wake(task, TASK_WAKE_CANCELED, 0);
}

bool weft_cancelled(void)
{
	weft_task *self = task_self();
	return self != NULL && atomic_load(&self->cancel_requested);
}

int weft_return_json(json_t *result)
{
	weft_task *self = task_self();
	if (self == NULL) {
		json_decref(result);
		return WEFT_EINVAL;
	}
	json_decref(self->done.result);
	self->done.result = result;
	return WEFT_OK;
}

int weft_return_int(int64_t value)
{
	weft_task *self = task_self();
	if (self == NULL)
		return WEFT_EINVAL;
	self->done.value = value;
	return WEFT_OK;
}

json_t *weft_task_result(const weft_task *task)
{
	return atomic_load_explicit(&task->done.done, memory_order_acquire) ? task->done.result
									    : NULL;
}

int64_t weft_task_value(const weft_task *task)
{
	return atomic_load_explicit(&task->done.done, memory_order_acquire) ? task->done.value : 0;
}

int weft_task_error(const weft_task *task)
{
	return atomic_load_explicit(&task->done.done, memory_order_acquire) ? task->done.error
									    : WEFT_OK;
}

bool weft_task_done(const weft_task *task)
{
	return atomic_load_explicit(&task->done.done, memory_order_acquire);
}

uint64_t weft_task_id(const weft_task *task)
{
	return task->id;
}

const char *weft_task_name(const weft_task *task)
{
	return task->name;
}

void *weft_task_local(void)
{
	weft_task *task = weft_task_current();
	return task != NULL ? task->local : NULL;
}

weft_task *weft_task_current(void)
{
	return task_self();
}

struct event_base *weft_event_base(void)
{
	worker *current = runtime_current_worker();
	return current != NULL && runtime_worker_task(current) != NULL ? runtime_worker_base(current)
									: NULL;
}

__attribute__((noinline)) int weft_errno(void)
{
	int value = errno;
	/* Keep the compiler from treating this as a pure function of nothing. */
	__asm__ volatile("" ::: "memory");
	return value;
}

int weft_worker_index(void)
{
	worker *current = runtime_current_worker();
	return current != NULL ? runtime_worker_index_of(current) : -1;
}

int weft_spawn(weft_task_fn fn, void *argument, const weft_spawn_options *options,
	       weft_task **task_out)
{
	worker *current = runtime_current_worker();
	if (current == NULL || fn == NULL)
		return WEFT_EINVAL;
	runtime *rt = runtime_of_worker(current);
	weft_task *task;
	int error = task_new(rt, fn, argument, options, &task);
	if (error != WEFT_OK)
		return error;
	if (task_out != NULL)
		*task_out = weft_task_retain(task);
	scheduler_schedule(rt, task, true);
	return WEFT_OK;
}

/* ---- stackless sleeps ---- */

static void task_start_stackless(worker *current, weft_task *task);

static int sleep_task_new(runtime *rt, double seconds, json_t *result,
			  const weft_spawn_options *options, weft_task **task_out)
{
	if (isnan(seconds)) {
		json_decref(result);
		return WEFT_EINVAL;
	}
	weft_task *task;
	int error = task_new(rt, NULL, NULL, options, &task);
	if (error != WEFT_OK) {
		json_decref(result);
		return error;
	}
	task->stackless = true;
	task->sleep_seconds = seconds < 0 ? 0 : seconds;
	task->done.result = result;
	if (task_out != NULL)
		*task_out = weft_task_retain(task);
	worker *current = runtime_current_worker();
	if (current != NULL && runtime_of_worker(current) == rt)
		task_start_stackless(current, task); /* no trip through a queue to arm a timer */
	else
		scheduler_schedule(rt, task, false);
	return WEFT_OK;
}

int weft_spawn_sleep(double seconds, json_t *result, const weft_spawn_options *options,
		     weft_task **task_out)
{
	worker *current = runtime_current_worker();
	if (current == NULL) {
		json_decref(result);
		return WEFT_EINVAL;
	}
	return sleep_task_new(runtime_of_worker(current), seconds, result, options, task_out);
}

int runtime_inject_sleep(runtime *rt, double seconds, json_t *result,
			 const weft_spawn_options *options, weft_task **task_out)
{
	return sleep_task_new(rt, seconds, result, options, task_out);
}

/* Arms a stackless sleep's timer on `current` and parks it there. Worker thread. */
static void task_start_stackless(worker *current, weft_task *task)
{
	task->started = true;
	if (atomic_load(&task->cancel_requested)) {
		task_complete(task, WEFT_ECANCELED);
		return;
	}
	task_park_begin(task);
	if (task_arm_event(task, current, -1, 0, task->sleep_seconds) != WEFT_OK)
		task_wake(task, TASK_WAKE_TIMEOUT, 0);
	if (atomic_load(&task->cancel_requested))
		task_wake(task, TASK_WAKE_CANCELED, 0);
	scheduler_commit_park(current, task);
}

void task_run_stackless(worker *current, weft_task *task)
{
	if (!task->started) {
		task_start_stackless(current, task);
		return;
	}
	int reason = task->wake_reason;
	task_complete(task, reason == TASK_WAKE_CANCELED ? WEFT_ECANCELED : WEFT_OK);
}

/* ---- joining from threads ---- */

static int thread_join_completion(completion *awaited, double timeout_seconds)
{
	if (runtime_current_worker() != NULL)
		return WEFT_EINVAL;
	if (atomic_load_explicit(&awaited->done, memory_order_acquire))
		return awaited->error;
	thread_waiter thread;
	pthread_mutex_init(&thread.lock, NULL);
	pthread_condattr_t attributes;
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&thread.cond, &attributes);
	pthread_condattr_destroy(&attributes);
	thread.signalled = false;
	completion_waiter node = {.next = NULL, .task = NULL, .thread = &thread};
	completion_lock(awaited);
	bool done = atomic_load_explicit(&awaited->done, memory_order_relaxed);
	if (!done) {
		node.next = awaited->waiters;
		awaited->waiters = &node;
	}
	completion_unlock(awaited);
	if (!done) {
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		if (timeout_seconds >= 0) {
			if (timeout_seconds > 1e9)
				timeout_seconds = 1e9;
			time_t whole = (time_t)timeout_seconds;
			deadline.tv_sec += whole;
			deadline.tv_nsec += (long)((timeout_seconds - (double)whole) * 1e9);
			if (deadline.tv_nsec >= 1000000000) {
				deadline.tv_sec++;
				deadline.tv_nsec -= 1000000000;
			}
		}
		pthread_mutex_lock(&thread.lock);
		while (!thread.signalled) {
			if (timeout_seconds < 0)
				pthread_cond_wait(&thread.cond, &thread.lock);
			else if (pthread_cond_timedwait(&thread.cond, &thread.lock, &deadline) != 0)
				break;
		}
		pthread_mutex_unlock(&thread.lock);
		/* Take the node back; after this no completer can be using it. */
		completion_lock(awaited);
		completion_remove_locked(awaited, &node);
		completion_unlock(awaited);
	}
	pthread_cond_destroy(&thread.cond);
	pthread_mutex_destroy(&thread.lock);
	if (!atomic_load_explicit(&awaited->done, memory_order_acquire))
		return WEFT_ETIMEOUT;
	return awaited->error;
}

int runtime_join(weft_task *task, double timeout_seconds)
{
	if (task == NULL || isnan(timeout_seconds))
		return WEFT_EINVAL;
	return thread_join_completion(&task->done, timeout_seconds);
}

/* ---- notify ---- */

struct weft_notify {
	atomic_flag lock;  /* spinlock: guards permit and waiter */
	bool permit;
	weft_task *waiter; /* the one task waiting, or NULL */
};

int weft_notify_new(weft_notify **notify_out)
{
	weft_notify *notify = malloc(sizeof *notify);
	if (notify == NULL)
		return WEFT_ENOMEM;
	atomic_flag_clear(&notify->lock);
	notify->permit = false;
	notify->waiter = NULL;
	*notify_out = notify;
	return WEFT_OK;
}

void weft_notify_free(weft_notify *notify)
{
	free(notify);
}

static void notify_lock(weft_notify *notify)
{
	while (atomic_flag_test_and_set_explicit(&notify->lock, memory_order_acquire)) {
#if defined(__x86_64__)
		__asm__ volatile("pause");
#endif
	}
}

static void notify_unlock(weft_notify *notify)
{
	atomic_flag_clear_explicit(&notify->lock, memory_order_release);
}

void weft_notify_signal(weft_notify *notify)
{
	notify_lock(notify);
	weft_task *waiting = notify->waiter;
	if (waiting != NULL) {
		notify->waiter = NULL;
		/* Under the lock, as in completion_finish: a waiter that gave up is not touched.
		 * If its timeout or a cancel woke it first, the permit stays for the next wait. */
		if (!task_wake(waiting, TASK_WAKE_READY, 0))
			notify->permit = true;
	} else {
		notify->permit = true;
	}
	notify_unlock(notify);
}

int weft_notify_wait(weft_notify *notify, double timeout_seconds)
{
	weft_task *self = task_self();
	if (self == NULL || notify == NULL || isnan(timeout_seconds))
		return WEFT_EINVAL;
	task_park_begin(self);
	notify_lock(notify);
	if (notify->permit || notify->waiter != NULL || timeout_seconds == 0) {
		int error = notify->permit ? WEFT_OK
					   : notify->waiter != NULL ? WEFT_EBUSY : WEFT_ETIMEOUT;
		notify->permit = false;
		notify_unlock(notify);
		atomic_store(&self->wake_claimed, 1);
		atomic_store_explicit(&self->state, TASK_RUNNING, memory_order_relaxed);
		return error;
	}
	notify->waiter = self;
	notify_unlock(notify);
	int reason = task_park_finish(self, -1, 0, timeout_seconds);
	if (reason == TASK_WAKE_READY)
		return WEFT_OK;
	notify_lock(notify);
	if (notify->waiter == self)
		notify->waiter = NULL;
	notify_unlock(notify);
	return task_reason_to_error(reason);
}

/* ---- one-shots ---- */

struct weft_oneshot {
	atomic_int references;
	completion done;
};

int weft_oneshot_new(weft_oneshot **oneshot_out)
{
	weft_oneshot *oneshot = malloc(sizeof *oneshot);
	if (oneshot == NULL)
		return WEFT_ENOMEM;
	atomic_init(&oneshot->references, 1);
	completion_init(&oneshot->done);
	*oneshot_out = oneshot;
	return WEFT_OK;
}

weft_oneshot *weft_oneshot_retain(weft_oneshot *oneshot)
{
	atomic_fetch_add_explicit(&oneshot->references, 1, memory_order_relaxed);
	return oneshot;
}

void weft_oneshot_release(weft_oneshot *oneshot)
{
	if (oneshot == NULL ||
	    atomic_fetch_sub_explicit(&oneshot->references, 1, memory_order_acq_rel) != 1)
		return;
	json_decref(oneshot->done.result);
	free(oneshot);
}

int weft_oneshot_set(weft_oneshot *oneshot, int error, json_t *result)
{
	/* Checked and claimed under one lock hold: of two setters racing, one
	 * wins and the other sees it already set. */
	completion_lock(&oneshot->done);
	bool already = atomic_load_explicit(&oneshot->done.done, memory_order_relaxed);
	if (!already) {
		oneshot->done.error = error;
		oneshot->done.result = result;
		completion_finish_locked(&oneshot->done);
	}
	completion_unlock(&oneshot->done);
	if (already) {
		json_decref(result);
		return WEFT_EALREADYSET;
	}
	return WEFT_OK;
}

int weft_oneshot_await(weft_oneshot *oneshot, double timeout_seconds)
{
	weft_task *self = task_self();
	if (self == NULL || oneshot == NULL || isnan(timeout_seconds))
		return WEFT_EINVAL;
	return task_await_completion(self, &oneshot->done, timeout_seconds);
}

json_t *weft_oneshot_result(const weft_oneshot *oneshot)
{
	return atomic_load_explicit(&oneshot->done.done, memory_order_acquire) ? oneshot->done.result
									      : NULL;
}

int runtime_join_oneshot(weft_oneshot *oneshot, double timeout_seconds)
{
	if (oneshot == NULL || isnan(timeout_seconds))
		return WEFT_EINVAL;
	return thread_join_completion(&oneshot->done, timeout_seconds);
}

/* ---- spawn_tree ---- */

typedef struct spawn_tree_node {
	int depth;
	int fanout;
} spawn_tree_node;

static int spawn_tree_body(void *argument)
{
	const spawn_tree_node *node = argument;
	int64_t count;
	int error = runtime_spawn_tree(node->depth, node->fanout, &count);
	if (error == WEFT_OK)
		weft_return_int(count);
	return error;
}

int runtime_spawn_tree(int depth, int fanout, int64_t *count_out)
{
	if (task_self() == NULL)
		return WEFT_EINVAL;
	if (depth < 0 || depth > 20 || fanout < 1 || fanout > 64)
		return WEFT_EBADARGS;
	double total = 0, level = 1;
	for (int i = 0; i <= depth; i++, level *= fanout)
		total += level;
	if (total > 10000000)
		return WEFT_EBADARGS;
	if (depth == 0) {
		*count_out = 1;
		return WEFT_OK;
	}
	spawn_tree_node child = {depth - 1, fanout};
	weft_task *children[64];
	int spawned = 0, error = WEFT_OK;
	for (; spawned < fanout; spawned++) {
		error = weft_spawn(spawn_tree_body, &child, NULL, &children[spawned]);
		if (error != WEFT_OK)
			break;
	}
	int64_t count = 1;
	/* Join every child even after a failure: they point at `child` on this stack. */
	for (int i = 0; i < spawned; i++) {
		int child_error;
		while ((child_error = weft_await(children[i], WEFT_FOREVER)) == WEFT_ECANCELED &&
		       !weft_task_done(children[i]))
			for (int j = i; j < spawned; j++)
				weft_cancel(children[j]);
		if (child_error == WEFT_OK)
			count += weft_task_value(children[i]);
		else if (error == WEFT_OK)
			error = child_error;
		weft_task_release(children[i]);
	}
	if (error != WEFT_OK)
		return error;
	*count_out = count;
	return WEFT_OK;
}

int runtime_spawn_tree_task(void *argument)
{
	const int *parameters = argument;
	int64_t count;
	int error = runtime_spawn_tree(parameters[0], parameters[1], &count);
	if (error == WEFT_OK)
		weft_return_int(count);
	return error;
}
