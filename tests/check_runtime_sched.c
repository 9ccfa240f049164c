/*
 * Scheduling: work spawned on one worker spreads over every worker by stealing; tasks injected
 * from outside are not starved by a worker that keeps spawning; an idle runtime parks its
 * threads (their CPU time stops growing).
 */
#include <check.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "daemon/runtime/runtime.h"

static runtime *start_runtime(int workers)
{
	runtime_config config = {.workers = workers};
	runtime *rt = NULL;
	int error = runtime_new(&config, &rt);
	ck_assert_msg(error == WEFT_OK, "runtime_new: %s", weft_strerror(error));
	return rt;
}

static double now_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void pause_briefly(void)
{
	struct timespec pause = {0, 2000000};
	nanosleep(&pause, NULL);
}

/* ---- spreading ---- */

enum { SPREAD_TASKS = 100000, SPREAD_WORKERS = 3 };

static atomic_long spread_done;
static atomic_int spawner_worker;

static int small_work(void *argument)
{
	(void)argument;
	volatile uint64_t sum = 0;
	for (int i = 0; i < 2000; i++)
		sum += (uint64_t)i;
	atomic_fetch_add(&spread_done, 1);
	return WEFT_OK;
}

static int spawn_many(void *argument)
{
	(void)argument;
	atomic_store(&spawner_worker, weft_worker_index()); /* it does not block while spawning */
	weft_task **tasks = malloc(sizeof *tasks * SPREAD_TASKS);
	if (tasks == NULL)
		return WEFT_ENOMEM;
	for (int i = 0; i < SPREAD_TASKS; i++) {
		int error = weft_spawn(small_work, NULL, NULL, &tasks[i]);
		if (error != WEFT_OK)
			return error;
	}
	int error = WEFT_OK;
	for (int i = 0; i < SPREAD_TASKS; i++) {
		int each = weft_await(tasks[i], WEFT_FOREVER);
		if (each != WEFT_OK)
			error = each;
		weft_task_release(tasks[i]);
	}
	free(tasks);
	return error;
}

START_TEST(tasks_spawned_from_one_task_spread_over_every_worker)
{
	runtime *rt = start_runtime(SPREAD_WORKERS);
	weft_task *root;
	ck_assert_int_eq(runtime_inject(rt, spawn_many, NULL, NULL, &root), WEFT_OK);
	ck_assert_int_eq(runtime_join(root, 60), WEFT_OK);
	weft_task_release(root);
	ck_assert_int_eq(atomic_load(&spread_done), SPREAD_TASKS);
	runtime_worker_stats stats[SPREAD_WORKERS];
	ck_assert_int_eq(runtime_stats(rt, stats, SPREAD_WORKERS), SPREAD_WORKERS);
	uint64_t stolen_by = 0, stolen_from = 0, run = 0;
	for (int i = 0; i < SPREAD_WORKERS; i++) {
		/* The spawner's worker may find its queue emptied by the others by the time its
		 * root task blocks; every other worker must have taken a share. */
		if (i != atomic_load(&spawner_worker))
			ck_assert_msg(stats[i].tasks_run >= SPREAD_TASKS / 100,
				      "worker %d ran only %llu of %d tasks", i,
				      (unsigned long long)stats[i].tasks_run, SPREAD_TASKS);
		stolen_by += stats[i].stolen_by;
		stolen_from += stats[i].stolen_from;
		run += stats[i].tasks_run;
	}
	ck_assert_msg(stolen_by > 0, "no task was stolen");
	ck_assert_uint_eq(stolen_by, stolen_from);
	ck_assert_uint_ge(run, SPREAD_TASKS + 1);
	runtime_free(rt, 5);
}
END_TEST

/* ---- one stealable task is found while its owner is busy ---- */

enum { LONE_ROUNDS = 200 };
static atomic_int lone_ran_on;

static int lone_task(void *argument)
{
	(void)argument;
	atomic_store(&lone_ran_on, weft_worker_index());
	return WEFT_OK;
}

static int noop(void *argument)
{
	(void)argument;
	return WEFT_OK;
}

/* Spawns two tasks: the second takes the runnext slot and pushes the first
 * into this worker's ring, where it is the only item. Then keeps the worker
 * busy without yielding until another worker has run it (or a long while). */
static int busy_owner(void *argument)
{
	(void)argument;
	weft_task *lone, *next;
	atomic_store(&lone_ran_on, -1);
	if (weft_spawn(lone_task, NULL, NULL, &lone) != WEFT_OK ||
	    weft_spawn(noop, NULL, NULL, &next) != WEFT_OK)
		return WEFT_ENOMEM;
	int owner_worker = weft_worker_index(); /* before any await moves this task */
	double deadline = now_seconds() + 10;
	while (atomic_load(&lone_ran_on) < 0 && now_seconds() < deadline)
		;
	int ran_on = atomic_load(&lone_ran_on);
	weft_await(lone, WEFT_FOREVER);
	weft_await(next, WEFT_FOREVER);
	weft_task_release(lone);
	weft_task_release(next);
	return ran_on >= 0 && ran_on != owner_worker ? WEFT_OK : WEFT_ETIMEOUT;
}

START_TEST(a_lone_task_in_a_busy_workers_ring_is_stolen)
{
	runtime *rt = start_runtime(2);
	for (int round = 0; round < LONE_ROUNDS; round++) {
		weft_task *owner;
		ck_assert_int_eq(runtime_inject(rt, busy_owner, NULL, NULL, &owner), WEFT_OK);
		int error = runtime_join(owner, 60);
		weft_task_release(owner);
		ck_assert_msg(error == WEFT_OK,
		              "round %d: the idle worker left the lone task to its busy owner", round);
	}
	runtime_free(rt, 5);
}
END_TEST

/* ---- injection is not starved ---- */

static atomic_bool flood_stop;
static atomic_long flood_runs;

/* Every flood task spawns its successor: the worker never runs out of local work. */
static int flood(void *argument)
{
	(void)argument;
	atomic_fetch_add(&flood_runs, 1);
	if (!atomic_load(&flood_stop))
		return weft_spawn(flood, NULL, NULL, NULL);
	return WEFT_OK;
}

static int mark(void *argument)
{
	atomic_store((atomic_long *)argument, atomic_load(&flood_runs));
	return WEFT_OK;
}

START_TEST(injected_tasks_are_not_starved_by_a_spawning_loop)
{
	runtime *rt = start_runtime(1); /* one worker: nobody else could pick the task up */
	ck_assert_int_eq(runtime_inject(rt, flood, NULL, NULL, NULL), WEFT_OK);
	/* Wait until the flood is under way. */
	double deadline = now_seconds() + 10;
	while (atomic_load(&flood_runs) < 1000 && now_seconds() < deadline)
		pause_briefly();
	ck_assert_int_ge(atomic_load(&flood_runs), 1000);
	for (int round = 0; round < 5; round++) {
		atomic_long seen_at = -1;
		weft_task *injected;
		ck_assert_int_eq(runtime_inject(rt, mark, &seen_at, NULL, &injected), WEFT_OK);
		int error = runtime_join(injected, 10);
		ck_assert_msg(error == WEFT_OK, "the injected task did not run: %s",
			      weft_strerror(error));
		weft_task_release(injected);
		ck_assert_int_ge(atomic_load(&seen_at), 0);
	}
	atomic_store(&flood_stop, true);
	runtime_free(rt, 10);
}
END_TEST

/* ---- a busy runnext pair does not starve the local queue ---- */

static atomic_bool pair_stop;
static atomic_bool bystander_ran;
static weft_notify *to_ping, *to_pong;

static int ping(void *argument)
{
	(void)argument;
	while (!atomic_load(&pair_stop)) {
		weft_notify_signal(to_pong);
		if (weft_notify_wait(to_ping, 10) != WEFT_OK)
			return WEFT_EINTERNAL;
	}
	weft_notify_signal(to_pong);
	return WEFT_OK;
}

static int pong(void *argument)
{
	(void)argument;
	while (!atomic_load(&pair_stop)) {
		if (weft_notify_wait(to_pong, 10) != WEFT_OK)
			return WEFT_EINTERNAL;
		weft_notify_signal(to_ping);
	}
	weft_notify_signal(to_ping);
	return WEFT_OK;
}

static int bystander(void *argument)
{
	(void)argument;
	atomic_store(&bystander_ran, true);
	return WEFT_OK;
}

/* Spawns the bystander first, so the pair pushes it down the local queue, then the pair. */
static int start_pair(void *argument)
{
	(void)argument;
	int error = weft_spawn(bystander, NULL, NULL, NULL);
	if (error == WEFT_OK)
		error = weft_spawn(pong, NULL, NULL, NULL);
	if (error == WEFT_OK)
		error = weft_spawn(ping, NULL, NULL, NULL);
	return error;
}

START_TEST(ping_pong_pair_does_not_starve_the_local_queue)
{
	runtime *rt = start_runtime(1); /* one worker: nobody could steal the bystander */
	ck_assert_int_eq(weft_notify_new(&to_ping), WEFT_OK);
	ck_assert_int_eq(weft_notify_new(&to_pong), WEFT_OK);
	ck_assert_int_eq(runtime_inject(rt, start_pair, NULL, NULL, NULL), WEFT_OK);
	double deadline = now_seconds() + 10;
	while (!atomic_load(&bystander_ran) && now_seconds() < deadline)
		pause_briefly();
	atomic_store(&pair_stop, true);
	ck_assert_msg(atomic_load(&bystander_ran), "the local task starved behind the pair");
	runtime_free(rt, 10);
	weft_notify_free(to_ping);
	weft_notify_free(to_pong);
}
END_TEST

/* ---- idle parking ---- */

static int brief(void *argument)
{
	(void)argument;
	return weft_sleep(0.001);
}

static double worker_cpu(runtime *rt, runtime_worker_stats *stats, int count)
{
	runtime_stats(rt, stats, count);
	double total = 0;
	for (int i = 0; i < count; i++)
		total += stats[i].cpu_seconds;
	return total;
}

START_TEST(idle_runtime_parks_and_uses_no_cpu)
{
	enum { WORKERS = 2 };
	runtime *rt = start_runtime(WORKERS);
	/* Some work first, so the workers have been busy. */
	for (int i = 0; i < 50; i++) {
		weft_task *task;
		ck_assert_int_eq(runtime_inject(rt, brief, NULL, NULL, &task), WEFT_OK);
		ck_assert_int_eq(runtime_join(task, 10), WEFT_OK);
		weft_task_release(task);
	}
	runtime_worker_stats stats[WORKERS];
	/* Every worker parks once its work is gone. */
	double deadline = now_seconds() + 10;
	uint64_t parks_before[WORKERS];
	for (;;) {
		runtime_stats(rt, stats, WORKERS);
		int parked = 0;
		for (int i = 0; i < WORKERS; i++)
			parked += stats[i].parks > 0;
		if (parked == WORKERS || now_seconds() > deadline)
			break;
		pause_briefly();
	}
	for (int i = 0; i < WORKERS; i++) {
		ck_assert_msg(stats[i].parks > 0, "worker %d never parked", i);
		parks_before[i] = stats[i].parks;
	}
	/* Over a quarter of a second of idleness, the workers' threads use (almost) no CPU and
	 * do not keep waking up. */
	double cpu_before = worker_cpu(rt, stats, WORKERS);
	double window_end = now_seconds() + 0.25;
	while (now_seconds() < window_end)
		pause_briefly();
	double cpu_used = worker_cpu(rt, stats, WORKERS) - cpu_before;
	ck_assert_msg(cpu_used < 0.02, "idle workers used %.3f s of CPU in 0.25 s", cpu_used);
	for (int i = 0; i < WORKERS; i++)
		ck_assert_msg(stats[i].parks - parks_before[i] <= 2,
			      "worker %d woke up %llu times while idle", i,
			      (unsigned long long)(stats[i].parks - parks_before[i]));
	runtime_free(rt, 5);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("runtime_sched");
	TCase *cases = tcase_create("scheduling");
	tcase_set_timeout(cases, 180);
	tcase_add_test(cases, tasks_spawned_from_one_task_spread_over_every_worker);
	tcase_add_test(cases, a_lone_task_in_a_busy_workers_ring_is_stolen);
	tcase_add_test(cases, injected_tasks_are_not_starved_by_a_spawning_loop);
	tcase_add_test(cases, ping_pong_pair_does_not_starve_the_local_queue);
	tcase_add_test(cases, idle_runtime_parks_and_uses_no_cpu);
	suite_add_tcase(suite, cases);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
