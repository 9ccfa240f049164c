/*
 * scheduler: what each worker thread does: pick a task, run it, find more, park.
 *
 * Design (after Go's scheduler and Tokio's multi-threaded runtime; runqueue.h says why the
 * local queue is a deque rather than their FIFO ring):
 *  - Each worker owns a 256-slot deque (newest first locally, oldest first for thieves); a
 *    `runnext` slot for the task it spawned or woke last, which runs next at most
 *    RUNNEXT_STREAK times in a row while the deque has work (then it moves to the deque and the
 *    deque's newest task runs); the slot is not stealable, so a ping-pong pair stays on one
 *    worker. Also an inbox for tasks woken by other threads whose timer/fd events live on this
 *    worker's base, a list of posted calls (runtime_post), a stack pool, a cache of task memory
 *    and a libevent event_base touched only by this thread.
 *  - The global injection queue takes tasks from non-worker threads, yielding tasks and the
 *    overflow of full deques. Every GLOBAL_INTERVAL ticks a worker looks there first, so outside
 *    work is never starved by local spawning; every FAIR_INTERVAL ticks it runs its oldest local
 *    task instead of its newest, so no local task waits more than about FAIR_INTERVAL task
 *    runs behind newer work (a spawning loop). Not more often: each such pick starts another
 *    depth-first path of fork-join work, and with an interval of 257 fib(30) kept ~100 MB of
 *    stacks alive instead of 3 MB.
 *  - Out of work, a worker searches (at most half the workers at once): the global queue, then
 *    the deques of the other workers from a random start; the last searcher that finds work
 *    wakes another, as both Go and Tokio do. After running stackful tasks it spins for
 *    SPIN_NANOSECONDS before parking (not after posted calls and events alone), because waking a
 *    halted vCPU costs tens of microseconds, then parks inside event_base_loop(EVLOOP_ONCE).
 *  - Parking without lost wakeups (Dekker's pattern): a parker sets its `parked` flag and
 *    bumps parked_count, then a seq_cst fence, then looks for work once more; a producer
 *    publishes work (a deque push is only a release store), then a seq_cst fence, then reads
 *    parked_count. The two fences order each side's store before its load, so one of the two
 *    sees the other (without them a store buffer lets both read the old values: the parker
 *    sleeps beside stealable work). The producer claims a parked worker by CAS on its flag and
 *    writes its eventfd.
 *  - Every EVENT_INTERVAL tasks the worker polls its loop without blocking, so timers and I/O are
 *    served while it is busy.
 *  - Tasks switch to the worker's scheduler context (the thread's own stack) to park, yield or
 *    finish; event_base_loop only ever runs there, never inside a coroutine. One shortcut: a
 *    task that parks while runnext holds a task that has run before switches straight to it
 *    when the scheduler would have had nothing else to do on that turn (worker_take_handoff);
 *    a ping-pong round trip then costs two switches instead of four.
 */
#include "daemon/runtime/runtime_internal.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum {
	RUNNEXT_STREAK = 3,
	GLOBAL_INTERVAL = 61,
	FAIR_INTERVAL = 4099,
	EVENT_INTERVAL = 61,
	SPIN_NANOSECONDS = 40000,
	TSAN_FIBER_USES = 1000,
};

/* ---- task lists ---- */

void scheduler_list_init(task_list *list)
{
	pthread_mutex_init(&list->lock, NULL);
	list->first = list->last = NULL;
	atomic_init(&list->length, 0);
}

/*
 * Appends a segment: a chain of `count` tasks linked through next (last->next must be NULL).
 * The list keeps segments whole (the head task records its segment's size and last task), so a
 * taker removes a whole segment in constant time instead of walking tasks under the lock:
 * walking the chain there cost a cache miss per task while the spawning worker waited for the
 * lock.
 */
static void task_list_append(task_list *list, weft_task *first, weft_task *last, size_t count)
{
	first->segment_count = (uint32_t)count;
	first->segment_last = last;
	pthread_mutex_lock(&list->lock);
	if (list->last == NULL)
		list->first = first;
	else
		list->last->segment_last->next = first;
	list->last = first;
	atomic_fetch_add(&list->length, count); /* seq_cst: see parking in the design notes */
	pthread_mutex_unlock(&list->lock);
}

/* Puts a segment back at the head of the list (it was taken and did not fit). */
static void task_list_prepend(task_list *list, weft_task *first, weft_task *last, size_t count)
{
	first->segment_count = (uint32_t)count;
	first->segment_last = last;
	pthread_mutex_lock(&list->lock);
	last->next = list->first;
	if (list->first == NULL)
		list->last = first;
	list->first = first;
	atomic_fetch_add(&list->length, count);
	pthread_mutex_unlock(&list->lock);
}

/* Takes the oldest segment; returns its first task (the chain linked through next). */
static weft_task *task_list_take_segment(task_list *list, size_t *count_out)
{
	*count_out = 0;
	if (atomic_load_explicit(&list->length, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&list->lock);
	weft_task *first = list->first;
	if (first != NULL) {
		weft_task *last = first->segment_last;
		list->first = last->next;
		if (list->first == NULL)
			list->last = NULL;
		last->next = NULL;
		*count_out = first->segment_count;
		atomic_fetch_sub(&list->length, first->segment_count);
	}
	pthread_mutex_unlock(&list->lock);
	return first;
}

/* Takes every task; returns the first (the chain linked through next). */
static weft_task *task_list_take_all(task_list *list)
{
	if (atomic_load_explicit(&list->length, memory_order_relaxed) == 0)
		return NULL;
	pthread_mutex_lock(&list->lock);
	weft_task *first = list->first;
	list->first = list->last = NULL;
	atomic_store(&list->length, 0);
	pthread_mutex_unlock(&list->lock);
	return first;
}

/* ---- waking and parking workers ---- */

void scheduler_signal_worker(worker *target)
{
	uint64_t one = 1;
	ssize_t written = write(target->wake_fd, &one, sizeof one);
	(void)written; /* EAGAIN: the counter is already non-zero, the worker will wake anyway */
}

/* Wakes one parked worker when nobody is searching (the searcher would find the work). */
/* The producer's half of the parking protocol (see the top of the file): how
 * many workers are parked, read after a seq_cst fence. ThreadSanitizer does
 * not model fences (gcc refuses them there), so its builds read the count
 * with an RMW instead: two RMWs on one location are ordered either way, which
 * gives the same guarantee, at the price of a shared cache line. */
static int parked_after_publishing(runtime *rt)
{
#ifdef SANITIZER_TSAN
	return atomic_fetch_add(&rt->parked_count, 0);
#else
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load(&rt->parked_count);
#endif
}

static void scheduler_notify_one(runtime *rt)
{
	if (parked_after_publishing(rt) == 0 || atomic_load(&rt->searching) != 0)
		return;
	for (int i = 0; i < rt->worker_count; i++) {
		worker *each = &rt->workers[i];
		bool expected = true;
		if (atomic_load_explicit(&each->parked, memory_order_relaxed) &&
		    atomic_compare_exchange_strong(&each->parked, &expected, false)) {
			atomic_fetch_sub(&rt->parked_count, 1);
			counter_add(&each->wakes, 1);
			scheduler_signal_worker(each);
			return;
		}
	}
}

static void scheduler_inject_chain(runtime *rt, weft_task *first, weft_task *last, size_t count)
{
	task_list_append(&rt->global, first, last, count);
	scheduler_notify_one(rt);
}

/* Puts a task on the calling worker's ring; a full ring sends half of itself to the global
 * queue. Owner thread. */
static void worker_push(worker *current, weft_task *task)
{
	while (!runqueue_push(&current->queue, task)) {
		void *batch[RUNQUEUE_CAPACITY / 2];
		int count = runqueue_take_half(&current->queue, batch);
		if (count == 0)
			continue;
		for (int i = 0; i + 1 < count; i++)
			((weft_task *)batch[i])->next = batch[i + 1];
		weft_task *last = batch[count - 1];
		last->next = task;
		task->next = NULL;
		scheduler_inject_chain(current->rt, batch[0], task, (size_t)count + 1);
		return;
	}
}

void scheduler_schedule(runtime *rt, weft_task *task, bool lifo)
{
	worker *current = runtime_current_worker();
	if (current == NULL || current->rt != rt) {
		task->next = NULL;
		scheduler_inject_chain(rt, task, task, 1);
		return;
	}
	if (lifo) {
		weft_task *displaced = current->runnext;
		current->runnext = task;
		if (displaced == NULL)
			return; /* this worker runs it next: nothing for others to do */
		task = displaced;
	}
	worker_push(current, task);
	scheduler_notify_one(rt);
}

void scheduler_wake_if_parked(worker *target)
{
	bool expected = true;
	if (atomic_load(&target->parked) &&
	    atomic_compare_exchange_strong(&target->parked, &expected, false)) {
		atomic_fetch_sub(&target->rt->parked_count, 1);
		counter_add(&target->wakes, 1);
		scheduler_signal_worker(target);
	}
}

void scheduler_send_to_owner(worker *owner, weft_task *task)
{
	task->next = NULL;
	task_list_append(&owner->inbox, task, task, 1);
	scheduler_wake_if_parked(owner);
}

void scheduler_run_calls(worker *current)
{
	if (atomic_load_explicit(&current->call_count, memory_order_relaxed) == 0)
		return;
	pthread_mutex_lock(&current->calls_lock);
	runtime_call *calls = current->calls;
	current->calls = current->calls_last = NULL;
	atomic_store(&current->call_count, 0);
	pthread_mutex_unlock(&current->calls_lock);
	/* Outside the lock: a call may post again. */
	while (calls != NULL) {
		runtime_call *call = calls;
		calls = call->next;
		call->fn(call->argument);
		free(call);
	}
}

/* Tasks woken elsewhere whose events live here: delete the events, then queue them. */
static void worker_drain_inbox(worker *current)
{
	weft_task *chain = task_list_take_all(&current->inbox);
	while (chain != NULL) {
		weft_task *task = chain;
		chain = chain->next;
		if (task->event_owner != NULL) {
			event_del(task->event);
			task->event_owner = NULL;
		}
		worker_push(current, task);
	}
}

/* Takes a segment of the global queue (one injected task, or the half of a full deque that
 * another worker moved there): runs the first and queues the rest locally when they fit;
 * otherwise they go back to the head of the global queue, rather than overflow this deque into
 * it again. */
static weft_task *worker_take_global(worker *current)
{
	size_t count;
	weft_task *first = task_list_take_segment(&current->rt->global, &count);
	if (first == NULL)
		return NULL;
	weft_task *rest = first->next;
	first->next = NULL;
	if (rest != NULL) {
		if (count - 1 <= RUNQUEUE_CAPACITY - runqueue_length(&current->queue)) {
			while (rest != NULL) {
				weft_task *task = rest;
				rest = rest->next;
				worker_push(current, task);
			}
		} else {
			task_list_prepend(&current->rt->global, rest, first->segment_last, count - 1);
			count = 1;
		}
	}
	owner_counter_add(&current->injected, count);
	return first;
}

static weft_task *worker_find_local(worker *current)
{
	current->tick++;
	if (current->tick % GLOBAL_INTERVAL == 0) {
		weft_task *task = worker_take_global(current);
		if (task != NULL)
			return task;
	}
	if (atomic_load_explicit(&current->inbox.length, memory_order_relaxed) != 0)
		worker_drain_inbox(current);
	scheduler_run_calls(current);
	if (current->runnext != NULL) {
		if (current->runnext_streak < RUNNEXT_STREAK ||
		    runqueue_length(&current->queue) == 0) {
			weft_task *task = current->runnext;
			current->runnext = NULL;
			current->runnext_streak++;
			return task;
		}
		/* The cap: the slot's task goes to the deque, where thieves can take it, and the
		 * newest deque task other than it runs now. */
		weft_task *newest = runqueue_pop(&current->queue);
		worker_push(current, current->runnext);
		current->runnext = NULL;
		current->runnext_streak = 0;
		if (newest != NULL)
			return newest;
	}
	current->runnext_streak = 0;
	/* Newest first keeps fork-join work depth-first; now and then the oldest, so nothing
	 * local waits forever behind a task that keeps spawning. */
	weft_task *task = current->tick % FAIR_INTERVAL == 0 ? runqueue_steal(&current->queue)
							      : NULL;
	if (task == NULL)
		task = runqueue_pop(&current->queue);
	if (task != NULL)
		return task;
	return worker_take_global(current);
}

static uint64_t worker_random(worker *current)
{
	/* xorshift64: cheap and good enough to pick a victim. */
	uint64_t x = current->random;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	current->random = x;
	return x;
}

static weft_task *worker_steal(worker *current)
{
	runtime *rt = current->rt;
	int count = rt->worker_count;
	int start = (int)(worker_random(current) % (uint64_t)count);
	for (int i = 0; i < count; i++) {
		worker *victim = &rt->workers[(start + i) % count];
		if (victim == current)
			continue;
		weft_task *task = runqueue_steal(&victim->queue);
		if (task != NULL) {
			owner_counter_add(&current->stolen_by, 1);
			counter_add(&victim->stolen_from, 1);
			return task;
		}
	}
	return NULL;
}

uint64_t scheduler_now_nanoseconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void worker_stop_searching(worker *current)
{
	if (!current->searching)
		return;
	current->searching = false;
	/* The last searcher to find work wakes another, so spreading work keeps going. */
	if (atomic_fetch_sub(&current->rt->searching, 1) == 1)
		scheduler_notify_one(current->rt);
}

/* Looks for work elsewhere, spinning a little before giving up. */
static weft_task *worker_search(worker *current)
{
	runtime *rt = current->rt;
	if (!current->searching) {
		int searching = atomic_load(&rt->searching);
		if (rt->worker_count > 1 && 2 * searching >= rt->worker_count)
			return NULL;
		current->searching = true;
		atomic_fetch_add(&rt->searching, 1);
	}
	uint64_t deadline = scheduler_now_nanoseconds() + (current->ran_task ? SPIN_NANOSECONDS : 0);
	for (unsigned round = 0;; round++) {
		weft_task *task = worker_take_global(current);
		if (task == NULL && rt->worker_count > 1)
			task = worker_steal(current);
		if (task == NULL && atomic_load_explicit(&current->call_count,
							 memory_order_relaxed) != 0)
			break; /* posted calls run from the loop */
		if (task == NULL && atomic_load_explicit(&current->inbox.length,
							 memory_order_relaxed) != 0) {
			worker_drain_inbox(current);
			task = runqueue_pop(&current->queue);
		}
		if (task != NULL) {
			worker_stop_searching(current);
			return task;
		}
		if (atomic_load_explicit(&rt->stopping, memory_order_relaxed) ||
		    (round % 16 == 15 && scheduler_now_nanoseconds() > deadline))
			break;
#if defined(__x86_64__)
		__asm__ volatile("pause");
#elif defined(__aarch64__)
		__asm__ volatile("yield");
#endif
	}
	current->searching = false;
	atomic_fetch_sub(&rt->searching, 1);
	return NULL;
}

static bool worker_sees_work(worker *current)
{
	runtime *rt = current->rt;
	if (atomic_load(&rt->global.length) != 0 || atomic_load(&current->inbox.length) != 0 ||
	    atomic_load(&current->call_count) != 0 ||
	    current->runnext != NULL || runqueue_length(&current->queue) != 0 ||
	    atomic_load(&rt->stopping))
		return true;
	/* One task in a busy worker's ring is stealable work too: its owner may be
	 * running something long and not take it for a while. */
	for (int i = 0; i < rt->worker_count; i++)
		if (runqueue_length(&rt->workers[i].queue) > 0)
			return true;
	return false;
}

static void worker_park(worker *current)
{
	runtime *rt = current->rt;
	atomic_store(&current->parked, true);
	atomic_fetch_add(&rt->parked_count, 1);
	/* The parker's half of the parking protocol (see the top of the file); the
	 * RMW above is its half under ThreadSanitizer. */
#ifndef SANITIZER_TSAN
	atomic_thread_fence(memory_order_seq_cst);
#endif
	bool expected = true;
	if (worker_sees_work(current)) {
		if (atomic_compare_exchange_strong(&current->parked, &expected, false))
			atomic_fetch_sub(&rt->parked_count, 1);
		return;
	}
	owner_counter_add(&current->parks, 1);
	current->ran_task = false;
	stack_pool_trim(&current->pool);
	event_base_loop(current->base, EVLOOP_ONCE);
	expected = true;
	if (atomic_compare_exchange_strong(&current->parked, &expected, false))
		atomic_fetch_sub(&rt->parked_count, 1);
}

void scheduler_wake_callback(evutil_socket_t fd, short what, void *argument)
{
	(void)what;
	(void)argument;
	uint64_t count;
	ssize_t got = read(fd, &count, sizeof count);
	(void)got; /* EAGAIN: another read emptied it; nothing to do */
}

/* The coroutine's first frame: run the body, then leave for good. */
static void scheduler_task_entry(void *argument)
{
	weft_task *task = argument;
	sanitizer_finish_switch(NULL);
	int error = task->fn(task->argument);
	task->done.error = error;
	scheduler_switch_out(task, TASK_SWITCH_FINISH);
	abort(); /* a finished task is never resumed */
}

/*
 * The ping-pong path: a parking task hands the processor straight to the task in runnext,
 * skipping the trip through the scheduler (two switches and a turn of its loop). Only when that
 * turn would have had nothing else to do (no global check, fairness pick or event poll due, no
 * inbox or posted call waiting) and the next task has run before, so that it resumes inside
 * scheduler_switch_out, whose return path finishes the handoff.
 */
static weft_task *worker_take_handoff(worker *current)
{
	weft_task *next = current->runnext;
	if (next == NULL || !next->started || next->stackless)
		return NULL;
	if (current->runnext_streak >= RUNNEXT_STREAK && runqueue_length(&current->queue) != 0)
		return NULL;
	uint32_t tick = current->tick + 1;
	if (tick % GLOBAL_INTERVAL == 0 || tick % FAIR_INTERVAL == 0 ||
	    current->since_poll + 1 >= EVENT_INTERVAL)
		return NULL;
	if (atomic_load_explicit(&current->inbox.length, memory_order_relaxed) != 0 ||
	    atomic_load_explicit(&current->call_count, memory_order_relaxed) != 0 ||
	    atomic_load_explicit(&current->rt->stopping, memory_order_relaxed))
		return NULL;
	current->tick = tick;
	current->since_poll++;
	current->runnext = NULL;
	current->runnext_streak++;
	return next;
}

/* Right after a task resumes: the task that handed it the processor is switched out now, so its
 * park can be committed (what the scheduler does after a task switches to it). */
static void worker_finish_handoff(worker *current)
{
	weft_task *parked = current->handed_off;
	if (parked == NULL)
		return;
	current->handed_off = NULL;
	if (!stack_canary_intact(parked->stack)) {
		runtime_report_overflow(parked, "overflowed its stack (canary overwritten)");
		abort();
	}
	scheduler_commit_park(current, parked);
}

void scheduler_switch_out(weft_task *task, int reason)
{
	worker *current = runtime_current_worker();
	task->switch_reason = reason;
	weft_task *next = reason == TASK_SWITCH_PARK ? worker_take_handoff(current) : NULL;
	if (next != NULL) {
		owner_counter_add(&current->tasks_run, 1);
		current->handed_off = task;
		current->current = next;
		atomic_store_explicit(&next->state, TASK_RUNNING, memory_order_relaxed);
		sanitizer_fiber target = {next->stack->low, next->stack->size,
					  next->stack->tsan_fiber};
		sanitizer_start_switch(&task->asan_fake_stack, &target);
		context_switch(&task->saved, &next->saved);
	} else {
		sanitizer_start_switch(reason == TASK_SWITCH_FINISH ? NULL : &task->asan_fake_stack,
				       &current->fiber);
		context_switch(&task->saved, &current->scheduler);
	}
	sanitizer_finish_switch(task->asan_fake_stack);
	/* Resumed by a scheduler, or handed the processor by a task that parked. */
	worker_finish_handoff(runtime_current_worker());
}

void scheduler_commit_park(worker *current, weft_task *task)
{
	int expected = TASK_PARKING;
	if (atomic_compare_exchange_strong(&task->state, &expected, TASK_PARKED))
		return;
	/* A waker came while it was switching out: it is ours to requeue. */
	if (task->event_owner != NULL) {
		event_del(task->event);
		task->event_owner = NULL;
	}
	atomic_store_explicit(&task->state, TASK_RUNNABLE, memory_order_relaxed);
	worker_push(current, task);
}

static void worker_run(worker *current, weft_task *task)
{
	owner_counter_add(&current->tasks_run, 1);
	if (task->stackless) {
		task_run_stackless(current, task); /* not "current": it runs no task code */
		return;
	}
	current->current = task;
	current->ran_task = true;
	if (!task->started) {
		task->started = true;
		if (atomic_load(&task->cancel_requested)) {
			current->current = NULL;
			task_complete(task, WEFT_ECANCELED);
			return;
		}
		task->stack = stack_pool_take(&current->pool);
		if (task->stack == NULL) {
			current->current = NULL;
			task_complete(task, WEFT_ENOMEM);
			return;
		}
		context_make(&task->saved, task->stack->low, task->stack->size, scheduler_task_entry,
			     task);
		/* ThreadSanitizer fibers are costly to make (each is a thread to it): one per stack,
		 * reused by the tasks that run on that stack. A finished task never returns from
		 * its entry, so each use leaves frames on the fiber's shadow call stack: the fiber
		 * is replaced after TSAN_FIBER_USES tasks, before that stack overflows. */
		if (task->stack->tsan_fiber != NULL && ++task->stack->fiber_uses > TSAN_FIBER_USES) {
			sanitizer_destroy_fiber(task->stack->tsan_fiber);
			task->stack->tsan_fiber = NULL;
		}
		if (task->stack->tsan_fiber == NULL) {
			task->stack->tsan_fiber = sanitizer_create_fiber();
			task->stack->fiber_uses = 0;
		}
	}
	atomic_store_explicit(&task->state, TASK_RUNNING, memory_order_relaxed);
	sanitizer_fiber target = {task->stack->low, task->stack->size, task->stack->tsan_fiber};
	sanitizer_start_switch(&current->fiber.asan_fake_stack, &target);
	context_switch(&current->scheduler, &task->saved);
	sanitizer_finish_switch(current->fiber.asan_fake_stack);
	/* Not necessarily `task`: it may have handed the processor to others (a handoff) before
	 * one of them switched back here. */
	task = current->current;
	current->current = NULL;
	if (!stack_canary_intact(task->stack)) {
		runtime_report_overflow(task, "overflowed its stack (canary overwritten)");
		abort();
	}
	switch (task->switch_reason) {
	case TASK_SWITCH_FINISH:
		stack_pool_give(&current->pool, task->stack);
		task->stack = NULL;
		task_complete(task, task->done.error);
		break;
	case TASK_SWITCH_YIELD:
		/* Behind everything: the global queue (local order is newest first). */
		atomic_store_explicit(&task->state, TASK_RUNNABLE, memory_order_relaxed);
		task->next = NULL;
		scheduler_inject_chain(current->rt, task, task, 1);
		break;
	default:
		scheduler_commit_park(current, task);
		break;
	}
}

void scheduler_loop(worker *current)
{
	runtime *rt = current->rt;
	for (;;) {
		weft_task *task = worker_find_local(current);
		if (task == NULL)
			task = worker_search(current);
		if (task != NULL) {
			worker_run(current, task);
			if (++current->since_poll >= EVENT_INTERVAL) {
				current->since_poll = 0;
				event_base_loop(current->base, EVLOOP_NONBLOCK);
			}
			continue;
		}
		/* Nothing queued: serve due timers and ready I/O before deciding to sleep. */
		event_base_loop(current->base, EVLOOP_NONBLOCK);
		if (current->runnext != NULL || runqueue_length(&current->queue) != 0)
			continue;
		if (atomic_load(&rt->stopping))
			return;
		worker_park(current);
	}
}
