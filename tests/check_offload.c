/* weft_run_in_thread: a task hands blocking calls to the thread pool. */
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "daemon/executors/thread/run_in_thread.h"
#include "daemon/runtime/runtime.h"
#include "daemon/executors/thread/threadpool.h"
#include "weft/executor.h"

static runtime *rt;
static struct threadpool *pool;

static double now(void)
{
	struct timespec time;
	clock_gettime(CLOCK_MONOTONIC, &time);
	return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

static void setup(size_t threads, size_t capacity)
{
	runtime_config config = {.workers = 2};
	ck_assert_int_eq(runtime_new(&config, &rt), WEFT_OK);
	ck_assert_int_eq(threadpool_create(threads, capacity, &pool), WEFT_OK);
	run_in_thread_set_pool(pool);
}

static void teardown(void)
{
	runtime_free(rt, 10);
	run_in_thread_set_pool(NULL);
	threadpool_shutdown(pool);
	threadpool_free(pool);
}

/* Runs body as a task and returns its code. */
static int run_task(weft_task_fn body, void *argument)
{
	weft_task *task;
	ck_assert_int_eq(runtime_inject(rt, body, argument, NULL, &task), WEFT_OK);
	int rv = runtime_join(task, 30);
	weft_task_release(task);
	return rv;
}

static void *double_it(void *argument)
{
	return (void *)((intptr_t)argument * 2);
}

static int call_double(void *argument)
{
	void *result = NULL;
	int rv = weft_run_in_thread(double_it, argument, &result);
	if (rv != WEFT_OK)
		return rv;
	return (intptr_t)result == 42 ? WEFT_OK : WEFT_EINTERNAL;
}

START_TEST(test_result_comes_back_to_the_task)
{
	setup(2, 16);
	ck_assert_int_eq(run_task(call_double, (void *)21), WEFT_OK);
	teardown();
}
END_TEST

START_TEST(test_outside_a_task_is_refused)
{
	setup(2, 16);
	ck_assert_int_eq(weft_run_in_thread(double_it, NULL, NULL), WEFT_EINVAL);
	teardown();
}
END_TEST

/* Calls that hold their pool thread until the test releases them, counting
 * how many are inside at once. */
static atomic_int calls_inside;
static atomic_bool calls_released;

static void *block_until_released(void *argument)
{
	(void)argument;
	atomic_fetch_add(&calls_inside, 1);
	double deadline = now() + 30; /* a hang guard, not a measurement */
	while (!atomic_load(&calls_released) && now() < deadline) {
		struct timespec pause = {.tv_nsec = 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static int call_blocking(void *argument)
{
	(void)argument;
	return weft_run_in_thread(block_until_released, NULL, NULL);
}

static int sleep_on_the_loop(void *argument)
{
	(void)argument;
	return weft_sleep(0.05);
}

START_TEST(test_calls_run_concurrently_and_loops_keep_running)
{
	setup(4, 16);
	weft_task *tasks[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(runtime_inject(rt, call_blocking, NULL, NULL, &tasks[i]), WEFT_OK);
	/* All four calls are inside at once: four threads, not one after another. */
	double deadline = now() + 30;
	while (atomic_load(&calls_inside) < 4)
		ck_assert_msg(now() < deadline, "only %d of 4 calls ran at once",
		              atomic_load(&calls_inside));
	/* While every pool thread blocks, a task sleeping on a worker loop still
	 * wakes: it finishes before any call is let go. */
	ck_assert_int_eq(run_task(sleep_on_the_loop, NULL), WEFT_OK);
	ck_assert(!atomic_load(&calls_released));
	atomic_store(&calls_released, true);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(runtime_join(tasks[i], 30), WEFT_OK);
		weft_task_release(tasks[i]);
	}
	teardown();
}
END_TEST

static atomic_bool call_returned;

static void *block_then_mark(void *argument)
{
	(void)argument;
	struct timespec pause = {.tv_nsec = 200 * 1000 * 1000};
	nanosleep(&pause, NULL);
	atomic_store(&call_returned, true);
	return NULL;
}

static int call_and_report(void *argument)
{
	int *seen_returned = argument;
	int rv = weft_run_in_thread(block_then_mark, NULL, NULL);
	/* A cancelled wait still ends only after the call, which uses our stack. */
	*seen_returned = atomic_load(&call_returned);
	return rv;
}

START_TEST(test_cancel_waits_for_the_running_call_then_says_cancelled)
{
	setup(1, 16);
	int seen_returned = 0;
	weft_task *task;
	ck_assert_int_eq(runtime_inject(rt, call_and_report, &seen_returned, NULL, &task), WEFT_OK);
	/* Let the call start on the pool thread, then cancel the task. */
	double deadline = now() + 10;
	struct threadpool_stats stats;
	do {
		threadpool_stats(pool, &stats);
		ck_assert(now() < deadline);
	} while (stats.busy == 0);
	weft_cancel(task);
	ck_assert_int_eq(runtime_join(task, 30), WEFT_ECANCELED);
	ck_assert_int_eq(seen_returned, 1);
	weft_task_release(task);
	teardown();
}
END_TEST

static int fill_the_queue(void *argument)
{
	(void)argument;
	return weft_run_in_thread(block_until_released, NULL, NULL);
}

START_TEST(test_full_queue_is_busy_at_once)
{
	setup(1, 1);
	weft_task *running, *queued;
	ck_assert_int_eq(runtime_inject(rt, fill_the_queue, NULL, NULL, &running), WEFT_OK);
	double deadline = now() + 10;
	struct threadpool_stats stats;
	do {
		threadpool_stats(pool, &stats);
		ck_assert(now() < deadline);
	} while (stats.busy == 0);
	ck_assert_int_eq(runtime_inject(rt, fill_the_queue, NULL, NULL, &queued), WEFT_OK);
	do {
		threadpool_stats(pool, &stats);
		ck_assert(now() < deadline);
	} while (stats.queued == 0);
	ck_assert_int_eq(run_task(call_blocking, NULL), WEFT_EBUSY);
	atomic_store(&calls_released, true);
	ck_assert_int_eq(runtime_join(running, 30), WEFT_OK);
	ck_assert_int_eq(runtime_join(queued, 30), WEFT_OK);
	weft_task_release(running);
	weft_task_release(queued);
	teardown();
}
END_TEST

static Suite *offload_suite(void)
{
	Suite *suite = suite_create("offload");
	TCase *calls = tcase_create("run_in_thread");
	tcase_set_timeout(calls, 60);
	tcase_add_test(calls, test_result_comes_back_to_the_task);
	tcase_add_test(calls, test_outside_a_task_is_refused);
	tcase_add_test(calls, test_calls_run_concurrently_and_loops_keep_running);
	tcase_add_test(calls, test_cancel_waits_for_the_running_call_then_says_cancelled);
	tcase_add_test(calls, test_full_queue_is_busy_at_once);
	suite_add_tcase(suite, calls);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(offload_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
