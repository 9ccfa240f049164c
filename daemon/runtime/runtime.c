/*
 * runtime: making and stopping a runtime, its worker threads and what they share; the outside
 * API (inject, stats); task memory; the stack-overflow report. What a worker does once it runs
 * is in scheduler.c, which opens with the design of the scheduler.
 */
#include "daemon/runtime/runtime_internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/thread.h>

enum {
	ALTSTACK_SIZE = 64 * 1024,
	TASK_CACHE_MAX = 1024,  /* free task blocks a worker keeps */
	TASK_CACHE_BATCH = 512, /* moved to or from the runtime's depot at once */
	MAX_WORKERS = 1024,
};

/* The worker of this thread. Task code reads it only through runtime_current_worker(): a task
 * may resume on another thread, and a cached TLS address would be the old thread's. */
static __thread worker *runtime_thread_worker;

__attribute__((noinline)) worker *runtime_current_worker(void)
{
	worker *current = runtime_thread_worker;
	/* The compiler must not assume the value survives a context switch of the caller. */
	__asm__ volatile("" ::: "memory");
	return current;
}

runtime *runtime_of_worker(const worker *current)
{
	return current->rt;
}

struct event_base *runtime_worker_base(const worker *current)
{
	return current->base;
}

int runtime_worker_index_of(const worker *current)
{
	return current->index;
}

weft_task *runtime_worker_task(const worker *current)
{
	return current->current;
}

uint64_t runtime_next_id(worker *current)
{
	/* Unique without a shared counter: the worker index is in the low bits. */
	return (++current->next_id << 11) | (uint64_t)current->index;
}

uint64_t runtime_outside_id(runtime *rt)
{
	return (atomic_fetch_add_explicit(&rt->outside_ids, 1, memory_order_relaxed) + 1) << 11 |
	       2047u;
}


void runtime_task_started(runtime *rt, worker *current)
{
	if (current != NULL)
		owner_counter_add(&current->spawned, 1);
	else
		atomic_fetch_add_explicit(&rt->outside_spawned, 1, memory_order_release);
}

void runtime_task_finished(runtime *rt)
{
	/* Tasks always finish on one of their runtime's workers. */
	owner_counter_add(&runtime_current_worker()->finished, 1);
	(void)rt;
}

uint64_t runtime_live_tasks(runtime *rt)
{
	/* Finished first: a task made and finished while we read is then counted as live, never
	 * the other way round, so "0" is never reported early. */
	uint64_t finished = 0, spawned = 0;
	for (int i = 0; i < rt->worker_count; i++)
		finished += atomic_load_explicit(&rt->workers[i].finished, memory_order_acquire);
	for (int i = 0; i < rt->worker_count; i++)
		spawned += atomic_load_explicit(&rt->workers[i].spawned, memory_order_acquire);
	spawned += atomic_load_explicit(&rt->outside_spawned, memory_order_acquire);
	return spawned > finished ? spawned - finished : 0;
}

int runtime_worker_count(const runtime *rt)
{
	return rt->worker_count;
}


const struct timeval *runtime_common_timeout(worker *current, const struct timeval *duration)
{
	for (int i = 0; i < current->common_count; i++)
		if (current->common_durations[i].tv_sec == duration->tv_sec &&
		    current->common_durations[i].tv_usec == duration->tv_usec)
			return current->common_timeouts[i];
	if (current->common_count == COMMON_TIMEOUTS)
		return duration;
	const struct timeval *common = event_base_init_common_timeout(current->base, duration);
	if (common == NULL)
		return duration;
	current->common_durations[current->common_count] = *duration;
	current->common_timeouts[current->common_count] = common;
	current->common_count++;
	return common;
}

/* ---- task memory ---- */

typedef struct free_block {
	struct free_block *next;       /* within a batch or a cache */
	struct free_block *next_batch; /* in the depot: the next batch */
	size_t count;                  /* in the depot: blocks in this batch */
} free_block;

void *runtime_task_alloc(worker *current, size_t size)
{
	if (current == NULL)
		return malloc(size);
	if (current->task_cache == NULL) {
		runtime *rt = current->rt;
		pthread_mutex_lock(&rt->depot_lock);
		free_block *batch = rt->depot;
		if (batch != NULL)
			rt->depot = batch->next_batch;
		pthread_mutex_unlock(&rt->depot_lock);
		if (batch == NULL)
			return malloc(size);
		current->task_cache = batch;
		current->task_cache_count = batch->count;
	}
	free_block *block = current->task_cache;
	current->task_cache = block->next;
	current->task_cache_count--;
	return block;
}

void runtime_task_dispose(void *memory)
{
	worker *current = runtime_current_worker();
	if (current == NULL) {
		free(memory);
		return;
	}
	free_block *block = memory;
	block->next = current->task_cache;
	current->task_cache = block;
	if (++current->task_cache_count < TASK_CACHE_MAX)
		return;
	/* Hand a batch to the depot for the workers that spawn. */
	free_block *last = block;
	for (int i = 1; i < TASK_CACHE_BATCH; i++)
		last = last->next;
	current->task_cache = last->next;
	current->task_cache_count -= TASK_CACHE_BATCH;
	last->next = NULL;
	block->count = TASK_CACHE_BATCH;
	runtime *rt = current->rt;
	pthread_mutex_lock(&rt->depot_lock);
	block->next_batch = rt->depot;
	rt->depot = block;
	pthread_mutex_unlock(&rt->depot_lock);
}

static void free_block_list(void *first)
{
	for (free_block *block = first; block != NULL;) {
		free_block *next = block->next;
		free(block);
		block = next;
	}
}

/* ---- stack overflow ---- */

void runtime_report_overflow(const weft_task *task, const char *how)
{
	/* Async-signal-safe formatting: this also runs inside the SIGSEGV handler. */
	char line[256];
	size_t length = 0;
	const char *parts[] = {"weft: task ", NULL, " (", task->name ? task->name : "task", ") ",
			       how, "; stopping\n"};
	char digits[24];
	size_t digit_count = 0;
	uint64_t id = task->id;
	do {
		digits[sizeof digits - 1 - digit_count++] = (char)('0' + id % 10);
		id /= 10;
	} while (id != 0 && digit_count < sizeof digits - 1);
	for (size_t part = 0; part < sizeof parts / sizeof parts[0]; part++) {
		const char *text = parts[part];
		size_t text_length;
		if (text == NULL) {
			text = &digits[sizeof digits - digit_count];
			text_length = digit_count;
		} else {
			text_length = strlen(text);
		}
		if (length + text_length > sizeof line)
			text_length = sizeof line - length;
		memcpy(line + length, text, text_length);
		length += text_length;
	}
	ssize_t written = write(STDERR_FILENO, line, length);
	(void)written;
}

/* The SIGSEGV action in place before ours: a sanitizer's handler in sanitizer builds, else the
 * default. Written once (runtime_process_init, before any worker runs), then only read. */
static struct sigaction runtime_previous_segv;

/* Any thread, in signal context: names the task when the fault is a guard page, then hands
 * the fault on unchanged. */
static void runtime_segv_handler(int signal_number, siginfo_t *info, void *unused)
{
	(void)unused;
	worker *current = runtime_thread_worker;
	if (current != NULL && current->current != NULL &&
	    stack_source_is_guard(current->rt->stacks, info->si_addr))
		runtime_report_overflow(current->current,
					"overflowed its stack into the guard page");
	/* Chain: put the previous action back and return. The faulting access runs again and
	 * reaches it — a sanitizer prints its report (issue 18: replacing its handler left a
	 * crash without one), the default kills the process with SIGSEGV. sigaction is
	 * async-signal-safe. */
	sigaction(signal_number, &runtime_previous_segv, NULL);
}

static void runtime_install_segv_handler(void)
{
	struct sigaction action;
	memset(&action, 0, sizeof action);
	action.sa_sigaction = runtime_segv_handler;
	action.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&action.sa_mask);
	sigaction(SIGSEGV, &action, &runtime_previous_segv);
}

static void worker_report_started(runtime *rt, bool failed)
{
	pthread_mutex_lock(&rt->start_lock);
	rt->started++;
	rt->start_failed |= failed;
	pthread_cond_broadcast(&rt->start_cond);
	pthread_mutex_unlock(&rt->start_lock);
}

static void *worker_main(void *argument)
{
	worker *current = argument;
	runtime *rt = current->rt;
	bool go = false;
	runtime_thread_worker = current;
	sanitizer_init_thread_fiber(&current->fiber);
	current->altstack = malloc(ALTSTACK_SIZE);
	if (current->altstack != NULL) {
		stack_t alternate = {.ss_sp = current->altstack, .ss_size = ALTSTACK_SIZE};
		sigaltstack(&alternate, NULL);
	}
	current->base = event_base_new();
	if (current->base != NULL)
		current->wake_event = event_new(current->base, current->wake_fd, EV_READ | EV_PERSIST,
						scheduler_wake_callback, current);
	if (current->base == NULL || current->wake_event == NULL ||
	    event_add(current->wake_event, NULL) != 0) {
		worker_report_started(rt, true);
		goto done;
	}
	worker_report_started(rt, false);
	/* Wait for every worker, so nobody steals from a half-made one. */
	pthread_mutex_lock(&rt->start_lock);
	while (rt->started < rt->worker_count)
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	go = !rt->start_failed;
	pthread_mutex_unlock(&rt->start_lock);
	if (go)
		scheduler_loop(current);
done:
	/* Calls posted before the stop still run, then the owner releases what lives here. */
	scheduler_run_calls(current);
	if (go && rt->config.on_worker_exit != NULL)
		rt->config.on_worker_exit(current->base, rt->config.on_worker_exit_argument);
	if (current->wake_event != NULL)
		event_free(current->wake_event);
	if (current->base != NULL)
		event_base_free(current->base);
	stack_pool_drain(&current->pool);
	free_block_list(current->task_cache);
	current->task_cache = NULL;
	if (current->altstack != NULL) {
		stack_t disable = {.ss_flags = SS_DISABLE};
		sigaltstack(&disable, NULL);
		free(current->altstack);
	}
	runtime_thread_worker = NULL;
	return NULL;
}

/* ---- lifecycle ---- */

static size_t runtime_default_guard_budget(void)
{
	long limit = 65530;
	FILE *file = fopen("/proc/sys/vm/max_map_count", "r");
	if (file != NULL) {
		if (fscanf(file, "%ld", &limit) != 1)
			limit = 65530;
		fclose(file);
	}
	/* Each guarded stack costs two mappings; leave three quarters to everything else. */
	return (size_t)(limit / 8);
}

static pthread_once_t runtime_process_once = PTHREAD_ONCE_INIT;

static void runtime_process_init(void)
{
	evthread_use_pthreads();
	runtime_install_segv_handler();
}

int runtime_new(const runtime_config *config, runtime **runtime_out)
{
	runtime_config settings = {0};
	if (config != NULL)
		settings = *config;
	if (settings.workers < 0 || settings.workers > MAX_WORKERS)
		return WEFT_EINVAL;
	if (settings.workers == 0) {
		long online = sysconf(_SC_NPROCESSORS_ONLN);
		settings.workers = online < 1 ? 1 : online > MAX_WORKERS ? MAX_WORKERS : (int)online;
	}
	if (settings.stack_size == 0)
		settings.stack_size = 256 * 1024;
	if (settings.guard_budget == 0)
		settings.guard_budget = runtime_default_guard_budget();
	if (settings.pool_watermark < 4)
		settings.pool_watermark = 256;
	pthread_once(&runtime_process_once, runtime_process_init);

	int error = WEFT_ENOMEM;
	runtime *rt = calloc(1, sizeof *rt);
	if (rt == NULL)
		return WEFT_ENOMEM;
	rt->worker_count = settings.workers;
	rt->config = settings;
	scheduler_list_init(&rt->global);
	pthread_mutex_init(&rt->depot_lock, NULL);
	pthread_mutex_init(&rt->start_lock, NULL);
	pthread_cond_init(&rt->start_cond, NULL);
	if (stack_source_new(settings.stack_size, settings.guard_budget, &rt->stacks) != WEFT_OK)
		goto fail_stacks;
	if (posix_memalign((void **)&rt->workers, 64, sizeof(worker) * (size_t)rt->worker_count))
		goto fail_workers;
	memset(rt->workers, 0, sizeof(worker) * (size_t)rt->worker_count);
	int made = 0;
	for (; made < rt->worker_count; made++) {
		worker *each = &rt->workers[made];
		each->rt = rt;
		each->index = made;
		each->random = 0x9e3779b97f4a7c15u * (uint64_t)(made + 1);
		runqueue_init(&each->queue);
		scheduler_list_init(&each->inbox);
		pthread_mutex_init(&each->calls_lock, NULL);
		stack_pool_init(&each->pool, rt->stacks, settings.pool_watermark);
		each->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (each->wake_fd < 0) {
			error = WEFT_EINTERNAL;
			goto fail_threads;
		}
		if (pthread_create(&each->thread, NULL, worker_main, each) != 0) {
			close(each->wake_fd);
			error = WEFT_EINTERNAL;
			goto fail_threads;
		}
	}
	pthread_mutex_lock(&rt->start_lock);
	while (rt->started < rt->worker_count)
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	bool failed = rt->start_failed;
	pthread_mutex_unlock(&rt->start_lock);
	if (failed) {
		error = WEFT_EINTERNAL;
		goto fail_threads;
	}
	*runtime_out = rt;
	return WEFT_OK;

fail_threads:
	/* Workers made so far either failed or wait for the others: make them all give up. */
	pthread_mutex_lock(&rt->start_lock);
	rt->start_failed = true;
	rt->started = rt->worker_count;
	pthread_cond_broadcast(&rt->start_cond);
	pthread_mutex_unlock(&rt->start_lock);
	for (int i = 0; i < made; i++) {
		pthread_join(rt->workers[i].thread, NULL);
		close(rt->workers[i].wake_fd);
	}
	free(rt->workers);
fail_workers:
	stack_source_free(rt->stacks);
fail_stacks:
	pthread_mutex_destroy(&rt->depot_lock);
	pthread_cond_destroy(&rt->start_cond);
	pthread_mutex_destroy(&rt->start_lock);
	free(rt);
	return error;
}

void runtime_free(runtime *rt, double grace_seconds)
{
	/* NaN and negatives mean no grace; more than a million seconds is capped there. */
	double grace = grace_seconds > 0 ? (grace_seconds < 1e6 ? grace_seconds : 1e6) : 0;
	uint64_t deadline = scheduler_now_nanoseconds() + (uint64_t)(grace * 1e9);
	while (runtime_live_tasks(rt) != 0 && scheduler_now_nanoseconds() < deadline) {
		struct timespec pause = {0, 1000000};
		nanosleep(&pause, NULL);
	}
	uint64_t left = runtime_live_tasks(rt);
	atomic_store(&rt->stopping, true);
	for (int i = 0; i < rt->worker_count; i++)
		scheduler_signal_worker(&rt->workers[i]);
	for (int i = 0; i < rt->worker_count; i++) {
		pthread_join(rt->workers[i].thread, NULL);
		close(rt->workers[i].wake_fd);
		pthread_mutex_destroy(&rt->workers[i].inbox.lock);
		pthread_mutex_destroy(&rt->workers[i].calls_lock);
	}
	if (left != 0) {
		/* Their stacks may still be in use by suspended frames: keep the memory. */
		fprintf(stderr, "weft: runtime stopped with %llu unfinished task(s); abandoning them\n",
			(unsigned long long)left);
	} else {
		stack_source_free(rt->stacks);
	}
	free(rt->workers);
	for (free_block *batch = rt->depot; batch != NULL;) {
		free_block *next = batch->next_batch;
		free_block_list(batch);
		batch = next;
	}
	pthread_mutex_destroy(&rt->depot_lock);
	pthread_mutex_destroy(&rt->global.lock);
	pthread_cond_destroy(&rt->start_cond);
	pthread_mutex_destroy(&rt->start_lock);
	free(rt);
}

int runtime_stats(runtime *rt, runtime_worker_stats *stats, int capacity)
{
	for (int i = 0; i < rt->worker_count && i < capacity; i++) {
		worker *each = &rt->workers[i];
		double cpu_seconds = 0;
		clockid_t clock;
		struct timespec used;
		if (pthread_getcpuclockid(each->thread, &clock) == 0 &&
		    clock_gettime(clock, &used) == 0)
			cpu_seconds = (double)used.tv_sec + (double)used.tv_nsec / 1e9;
		stats[i] = (runtime_worker_stats){
			.tasks_run = atomic_load_explicit(&each->tasks_run, memory_order_relaxed),
			.stolen_by = atomic_load_explicit(&each->stolen_by, memory_order_relaxed),
			.stolen_from = atomic_load_explicit(&each->stolen_from, memory_order_relaxed),
			.injected = atomic_load_explicit(&each->injected, memory_order_relaxed),
			.parks = atomic_load_explicit(&each->parks, memory_order_relaxed),
			.wakes = atomic_load_explicit(&each->wakes, memory_order_relaxed),
			.queue_depth = runqueue_length(&each->queue),
			.cpu_seconds = cpu_seconds,
		};
	}
	return rt->worker_count;
}

int runtime_post(runtime *rt, int worker_index, void (*fn)(void *argument), void *argument)
{
	if (worker_index < 0 || worker_index >= rt->worker_count || fn == NULL)
		return WEFT_EINVAL;
	runtime_call *call = malloc(sizeof *call);
	if (call == NULL)
		return WEFT_ENOMEM;
	call->next = NULL;
	call->fn = fn;
	call->argument = argument;
	worker *target = &rt->workers[worker_index];
	pthread_mutex_lock(&target->calls_lock);
	if (target->calls_last == NULL)
		target->calls = call;
	else
		target->calls_last->next = call;
	target->calls_last = call;
	atomic_fetch_add(&target->call_count, 1); /* seq_cst: pairs with the parker's check */
	pthread_mutex_unlock(&target->calls_lock);
	scheduler_wake_if_parked(target);
	return WEFT_OK;
}

struct event_base *runtime_event_base(runtime *rt, int worker_index)
{
	if (worker_index < 0 || worker_index >= rt->worker_count)
		return NULL;
	return rt->workers[worker_index].base;
}

int runtime_inject(runtime *rt, weft_task_fn fn, void *argument, const weft_spawn_options *options,
		   weft_task **task_out)
{
	weft_task *task;
	int error = task_new(rt, fn, argument, options, &task);
	if (error != WEFT_OK)
		return error;
	if (task_out != NULL)
		*task_out = weft_task_retain(task);
	scheduler_schedule(rt, task, false);
	return WEFT_OK;
}
