/*
 * The thread pool's contract: concurrency up to the thread count, FIFO order,
 * a bounded queue, cancel of queued and running items, shutdown, and done
 * called exactly once for every accepted item, also under a stress of many
 * submitting threads.
 *
 * Items that must stay "running" block on a gate the test opens; waiting for
 * a state polls the pool's stats in a loop bounded in time, never a fixed
 * sleep.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "daemon/executors/thread/threadpool.h"
#include "weft/error.h"

/* How long any wait in these tests may take before the test fails. */
#define TEST_DEADLINE_SECONDS 20.0

#define ck_assert_weft(actual, expected)                                                           \
	ck_assert_msg((actual) == (expected), "got %s (%s), expected %s", weft_error_code(actual), \
		      weft_strerror(actual), weft_error_code(expected))

static double now_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void pause_briefly(void)
{
	struct timespec pause = {0, 1000000}; /* 1 ms between polls */
	nanosleep(&pause, NULL);
}

/* ---- a gate that running items wait behind ---------------------------- */

struct gate {
	pthread_mutex_t mutex;
	pthread_cond_t opened;
	bool open;
};

static struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};

static void gate_wait(void)
{
	pthread_mutex_lock(&gate.mutex);
	while (!gate.open)
		pthread_cond_wait(&gate.opened, &gate.mutex);
	pthread_mutex_unlock(&gate.mutex);
}

static void gate_open(void)
{
	pthread_mutex_lock(&gate.mutex);
	gate.open = true;
	pthread_cond_broadcast(&gate.opened);
	pthread_mutex_unlock(&gate.mutex);
}

/* ---- test items ------------------------------------------------------- */

enum item_kind { ITEM_NOOP, ITEM_GATED, ITEM_SLEEP, ITEM_SLEEP_UNTIL };

struct item {
	struct threadpool_work work; /* first, so a work pointer is an item pointer */
	enum item_kind kind;
	int index;
	double sleep_seconds;
	/* Written by run on a pool thread, read by the test after done is seen
	 * through the counters' mutex below. */
	double started, finished;
	bool saw_stop;
	atomic_int runs;
	atomic_int dones;
	atomic_bool cancelled_in_done;
};

/* Counts every done, and lets the test wait for a number of them. */
static pthread_mutex_t done_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_changed = PTHREAD_COND_INITIALIZER;
static int done_total;
/* The order in which items started running, for the FIFO test. */
static int run_order[1000];
static int run_order_length;

static void item_run(struct threadpool_work *work)
{
	struct item *item = (struct item *)work;

	atomic_fetch_add(&item->runs, 1);
	item->started = now_seconds();
	pthread_mutex_lock(&done_mutex);
	if (run_order_length < (int)(sizeof(run_order) / sizeof(run_order[0])))
		run_order[run_order_length++] = item->index;
	pthread_mutex_unlock(&done_mutex);
	if (item->kind == ITEM_GATED) {
		gate_wait();
		item->saw_stop = threadpool_work_stop_requested(work);
	} else if (item->kind == ITEM_SLEEP_UNTIL) {
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += (time_t)item->sleep_seconds;
		item->saw_stop = threadpool_work_sleep_until(work, &deadline) == WEFT_ECANCELED;
	} else if (item->kind == ITEM_SLEEP) {
		struct timespec pause = {0, (long)(item->sleep_seconds * 1e9)};
		while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
			;
	}
	item->finished = now_seconds();
}

static void item_done(struct threadpool_work *work)
{
	struct item *item = (struct item *)work;

	atomic_store(&item->cancelled_in_done, work->cancelled);
	atomic_fetch_add(&item->dones, 1);
	pthread_mutex_lock(&done_mutex);
	done_total++;
	pthread_cond_broadcast(&done_changed);
	pthread_mutex_unlock(&done_mutex);
}

static void item_init(struct item *item, enum item_kind kind, int index)
{
	threadpool_work_init(&item->work, item_run, item_done);
	item->kind = kind;
	item->index = index;
	item->sleep_seconds = 0;
	item->started = item->finished = 0;
	item->saw_stop = false;
	atomic_init(&item->runs, 0);
	atomic_init(&item->dones, 0);
	atomic_init(&item->cancelled_in_done, false);
}

/* Puts the shared test state back to its start: Check forks each test, but
 * with CK_FORK=no (for valgrind) they share one process. */
static void test_setup(void)
{
	pthread_mutex_lock(&gate.mutex);
	gate.open = false;
	pthread_mutex_unlock(&gate.mutex);
	pthread_mutex_lock(&done_mutex);
	done_total = 0;
	run_order_length = 0;
	pthread_mutex_unlock(&done_mutex);
}

/* Waits until at least `count` dones were seen; fails the test after the deadline. */
static void wait_for_dones(int count)
{
	double deadline = now_seconds() + TEST_DEADLINE_SECONDS;
	struct timespec until;

	pthread_mutex_lock(&done_mutex);
	while (done_total < count) {
		ck_assert_msg(now_seconds() < deadline, "only %d of %d items done in time",
			      done_total, count);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 10000000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&done_changed, &done_mutex, &until);
	}
	pthread_mutex_unlock(&done_mutex);
}

/* Polls the stats until `busy` threads are busy and `queued` items queued. */
static void wait_for_stats(struct threadpool *pool, size_t busy, size_t queued)
{
	double deadline = now_seconds() + TEST_DEADLINE_SECONDS;
	struct threadpool_stats stats;

	for (;;) {
		threadpool_stats(pool, &stats);
		if (stats.busy == busy && stats.queued == queued)
			return;
		ck_assert_msg(now_seconds() < deadline,
			      "stats stuck at busy %zu queued %zu, want %zu %zu", stats.busy,
			      stats.queued, busy, queued);
		pause_briefly();
	}
}

static void assert_done_once(struct item *items, int count)
{
	for (int i = 0; i < count; i++)
		ck_assert_msg(atomic_load(&items[i].dones) == 1, "item %d: done called %d times", i,
			      atomic_load(&items[i].dones));
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(create_rejects_bad_sizes)
{
	struct threadpool *pool = NULL;

	ck_assert_weft(threadpool_create(0, 10, &pool), WEFT_EINVAL);
	ck_assert_weft(threadpool_create(THREADPOOL_MAX_THREADS + 1, 10, &pool), WEFT_EINVAL);
	ck_assert_weft(threadpool_create(2, 0, &pool), WEFT_EINVAL);
	ck_assert_ptr_null(pool);
	threadpool_free(NULL);
}
END_TEST

START_TEST(four_threads_run_four_sleeps_at_once_and_the_fifth_waits)
{
	enum { COUNT = 5 };
	const double sleep_seconds = 0.5;
	struct threadpool *pool;
	struct item items[COUNT];
	double submitted, first_finish = 1e300;

	ck_assert_weft(threadpool_create(4, 16, &pool), WEFT_OK);
	for (int i = 0; i < COUNT; i++) {
		item_init(&items[i], ITEM_SLEEP, i);
		items[i].sleep_seconds = sleep_seconds;
	}
	submitted = now_seconds();
	for (int i = 0; i < COUNT; i++)
		ck_assert_weft(threadpool_submit(pool, &items[i].work), WEFT_OK);
	wait_for_dones(COUNT);

	/* At once: each of the four started before any of them finished (by the
	 * items' own times; two at a time, the third would start after a finish). */
	double last_start = 0;
	for (int i = 0; i < 4; i++) {
		if (items[i].finished < first_finish)
			first_finish = items[i].finished;
		if (items[i].started > last_start)
			last_start = items[i].started;
	}
	ck_assert_msg(last_start < first_finish,
		      "one of the first four started %.3f s after another had finished: not "
		      "concurrent", last_start - first_finish);
	/* The fifth had no thread until one of the first four was done. */
	ck_assert_msg(items[4].started >= first_finish,
		      "the fifth started %.3f s before a thread was free",
		      first_finish - items[4].started);
	ck_assert_msg(items[4].finished - submitted >= 2 * sleep_seconds - 0.001,
		      "the fifth finished after only %.3f s", items[4].finished - submitted);
	assert_done_once(items, COUNT);
	threadpool_free(pool);
}
END_TEST

START_TEST(fifth_item_stays_queued_while_four_threads_are_busy)
{
	enum { COUNT = 5 };
	struct threadpool *pool;
	struct item items[COUNT];
	struct threadpool_stats stats;

	ck_assert_weft(threadpool_create(4, 16, &pool), WEFT_OK);
	for (int i = 0; i < COUNT; i++) {
		item_init(&items[i], ITEM_GATED, i);
		ck_assert_weft(threadpool_submit(pool, &items[i].work), WEFT_OK);
	}
	wait_for_stats(pool, 4, 1);
	ck_assert_int_eq(atomic_load(&items[4].runs), 0);
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.threads, 4);
	ck_assert_uint_eq(stats.completed, 0);

	gate_open();
	wait_for_dones(COUNT);
	threadpool_shutdown(pool);
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.completed, COUNT);
	ck_assert_uint_eq(stats.busy, 0);
	ck_assert_uint_eq(stats.threads, 0);
	assert_done_once(items, COUNT);
	threadpool_free(pool);
}
END_TEST

START_TEST(one_thread_runs_items_in_submit_order)
{
	enum { COUNT = 200 };
	struct threadpool *pool;
	static struct item items[COUNT];

	ck_assert_weft(threadpool_create(1, COUNT, &pool), WEFT_OK);
	for (int i = 0; i < COUNT; i++) {
		item_init(&items[i], i == 0 ? ITEM_GATED : ITEM_NOOP, i);
		ck_assert_weft(threadpool_submit(pool, &items[i].work), WEFT_OK);
	}
	gate_open();
	wait_for_dones(COUNT);
	ck_assert_int_eq(run_order_length, COUNT);
	for (int i = 0; i < COUNT; i++)
		ck_assert_msg(run_order[i] == i, "position %d ran item %d", i, run_order[i]);
	assert_done_once(items, COUNT);
	threadpool_free(pool);
}
END_TEST

START_TEST(full_queue_returns_busy_without_blocking)
{
	struct threadpool *pool;
	struct item items[4];
	struct threadpool_stats stats;

	ck_assert_weft(threadpool_create(1, 2, &pool), WEFT_OK);
	for (int i = 0; i < 4; i++)
		item_init(&items[i], ITEM_GATED, i);
	ck_assert_weft(threadpool_submit(pool, &items[0].work), WEFT_OK);
	wait_for_stats(pool, 1, 0);
	ck_assert_weft(threadpool_submit(pool, &items[1].work), WEFT_OK);
	ck_assert_weft(threadpool_submit(pool, &items[2].work), WEFT_OK);
	ck_assert_weft(threadpool_submit(pool, &items[3].work), WEFT_EBUSY);
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.queued, 2);
	ck_assert_uint_eq(stats.capacity, 2);

	gate_open();
	wait_for_dones(3);
	assert_done_once(items, 3);
	/* The refused item was never the pool's: no done for it. */
	ck_assert_int_eq(atomic_load(&items[3].dones), 0);
	/* Now that the queue has room it is accepted. */
	ck_assert_weft(threadpool_submit(pool, &items[3].work), WEFT_OK);
	wait_for_dones(4);
	threadpool_free(pool);
}
END_TEST

START_TEST(submitting_an_item_twice_is_refused)
{
	struct threadpool *pool;
	struct item items[2];

	ck_assert_weft(threadpool_create(1, 8, &pool), WEFT_OK);
	item_init(&items[0], ITEM_GATED, 0);
	item_init(&items[1], ITEM_NOOP, 1);
	ck_assert_weft(threadpool_submit(pool, &items[0].work), WEFT_OK);
	ck_assert_weft(threadpool_submit(pool, &items[1].work), WEFT_OK);
	wait_for_stats(pool, 1, 1);
	ck_assert_weft(threadpool_submit(pool, &items[0].work), WEFT_EINVAL); /* running */
	ck_assert_weft(threadpool_submit(pool, &items[1].work), WEFT_EINVAL); /* queued */
	gate_open();
	wait_for_dones(2);
	/* Once done has run, the item can go round again. */
	ck_assert_weft(threadpool_submit(pool, &items[1].work), WEFT_OK);
	wait_for_dones(3);
	ck_assert_int_eq(atomic_load(&items[1].runs), 2);
	threadpool_free(pool);
}
END_TEST

START_TEST(cancel_removes_a_queued_item_and_calls_done_at_once)
{
	struct threadpool *pool;
	struct item items[3];
	struct threadpool_stats stats;

	ck_assert_weft(threadpool_create(1, 8, &pool), WEFT_OK);
	item_init(&items[0], ITEM_GATED, 0);
	item_init(&items[1], ITEM_NOOP, 1);
	item_init(&items[2], ITEM_NOOP, 2);
	for (int i = 0; i < 3; i++)
		ck_assert_weft(threadpool_submit(pool, &items[i].work), WEFT_OK);
	wait_for_stats(pool, 1, 2);

	ck_assert(threadpool_cancel(pool, &items[1].work));
	/* done ran inside threadpool_cancel, flagged, without run. */
	ck_assert_int_eq(atomic_load(&items[1].dones), 1);
	ck_assert(atomic_load(&items[1].cancelled_in_done));
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.queued, 1);
	ck_assert_uint_eq(stats.cancelled, 1);
	/* A second cancel finds nothing to remove. */
	ck_assert(!threadpool_cancel(pool, &items[1].work));

	gate_open();
	wait_for_dones(3);
	ck_assert_int_eq(atomic_load(&items[1].runs), 0);
	ck_assert_int_eq(atomic_load(&items[2].runs), 1);
	ck_assert(!atomic_load(&items[2].cancelled_in_done));
	assert_done_once(items, 3);
	threadpool_free(pool);
}
END_TEST

START_TEST(cancel_of_a_running_item_lets_it_complete)
{
	struct threadpool *pool;
	struct item item;

	ck_assert_weft(threadpool_create(1, 8, &pool), WEFT_OK);
	item_init(&item, ITEM_GATED, 0);
	ck_assert_weft(threadpool_submit(pool, &item.work), WEFT_OK);
	wait_for_stats(pool, 1, 0);

	ck_assert(!threadpool_cancel(pool, &item.work));
	ck_assert_int_eq(atomic_load(&item.dones), 0);
	gate_open();
	wait_for_dones(1);
	/* run completed, saw the stop request, and done was not flagged: the
	 * caller is the one that drops the result. */
	ck_assert_int_eq(atomic_load(&item.runs), 1);
	ck_assert(item.saw_stop);
	ck_assert(!atomic_load(&item.cancelled_in_done));
	ck_assert_int_eq(atomic_load(&item.dones), 1);
	/* Cancelling a finished item does nothing. */
	ck_assert(!threadpool_cancel(pool, &item.work));
	ck_assert_int_eq(atomic_load(&item.dones), 1);
	threadpool_free(pool);
}
END_TEST

static void *shutdown_thread_main(void *argument)
{
	threadpool_shutdown(argument);
	return NULL;
}

START_TEST(shutdown_cancels_queued_items_and_waits_for_running_ones)
{
	enum { COUNT = 5 };
	struct threadpool *pool;
	struct item items[COUNT], late;
	struct threadpool_stats stats;
	pthread_t shutdown_thread;

	ck_assert_weft(threadpool_create(2, 8, &pool), WEFT_OK);
	for (int i = 0; i < COUNT; i++) {
		item_init(&items[i], ITEM_GATED, i);
		ck_assert_weft(threadpool_submit(pool, &items[i].work), WEFT_OK);
	}
	wait_for_stats(pool, 2, 3);

	ck_assert_int_eq(pthread_create(&shutdown_thread, NULL, shutdown_thread_main, pool), 0);
	/* The three queued items are dropped while the two running ones are
	 * still behind the gate. */
	wait_for_dones(3);
	for (int i = 2; i < COUNT; i++) {
		ck_assert_int_eq(atomic_load(&items[i].runs), 0);
		ck_assert(atomic_load(&items[i].cancelled_in_done));
	}
	ck_assert_int_eq(atomic_load(&items[0].dones), 0);
	ck_assert_int_eq(atomic_load(&items[1].dones), 0);
	item_init(&late, ITEM_NOOP, 99);
	ck_assert_weft(threadpool_submit(pool, &late.work), WEFT_ESHUTDOWN);

	gate_open();
	ck_assert_int_eq(pthread_join(shutdown_thread, NULL), 0);
	/* shutdown returned only after the running items finished. */
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(atomic_load(&items[i].runs), 1);
		ck_assert(!atomic_load(&items[i].cancelled_in_done));
	}
	assert_done_once(items, COUNT);
	ck_assert_int_eq(atomic_load(&late.dones), 0);
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.completed, 2);
	ck_assert_uint_eq(stats.cancelled, 3);
	ck_assert_uint_eq(stats.threads, 0);
	threadpool_shutdown(pool); /* idempotent */
	threadpool_free(pool);
}
END_TEST

START_TEST(idle_pool_uses_no_cpu)
{
	struct threadpool *pool;
	struct timespec before, after, pause = {0, 300000000};

	ck_assert_weft(threadpool_create(4, 8, &pool), WEFT_OK);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &before);
	while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
		;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &after);
	double used = (double)(after.tv_sec - before.tv_sec) +
		      (double)(after.tv_nsec - before.tv_nsec) / 1e9;
	ck_assert_msg(used < 0.03, "4 idle threads used %.3f s of CPU in 0.3 s", used);
	threadpool_free(pool);
}
END_TEST

/* ---- stress ----------------------------------------------------------- */

enum { STRESS_SUBMITTERS = 4, STRESS_ITEMS = 100000 };

struct stress_item {
	struct threadpool_work work;
	atomic_int runs;
	atomic_int dones;
};

static struct stress_item *stress_items;
static atomic_long stress_done_total;

static void stress_run(struct threadpool_work *work)
{
	atomic_fetch_add_explicit(&((struct stress_item *)work)->runs, 1, memory_order_relaxed);
}

static void stress_done(struct threadpool_work *work)
{
	atomic_fetch_add_explicit(&((struct stress_item *)work)->dones, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&stress_done_total, 1, memory_order_release);
}

struct stress_submitter {
	struct threadpool *pool;
	int first, count;
	long busy_retries;
};

static void *stress_submitter_main(void *argument)
{
	struct stress_submitter *submitter = argument;

	for (int i = submitter->first; i < submitter->first + submitter->count; i++) {
		int rv;
		while ((rv = threadpool_submit(submitter->pool, &stress_items[i].work)) ==
		       WEFT_EBUSY) {
			submitter->busy_retries++;
			sched_yield();
		}
		if (rv != WEFT_OK)
			return (void *)1;
	}
	return NULL;
}

START_TEST(stress_many_submitters_every_item_done_exactly_once)
{
	struct threadpool *pool;
	struct stress_submitter submitters[STRESS_SUBMITTERS];
	pthread_t threads[STRESS_SUBMITTERS];
	struct threadpool_stats stats;
	double deadline;
	void *failed;

	atomic_store(&stress_done_total, 0);
	stress_items = calloc(STRESS_ITEMS, sizeof(*stress_items));
	ck_assert_ptr_nonnull(stress_items);
	for (int i = 0; i < STRESS_ITEMS; i++)
		threadpool_work_init(&stress_items[i].work, stress_run, stress_done);
	/* A small queue, so that the full-queue path is stressed as well. */
	ck_assert_weft(threadpool_create(4, 256, &pool), WEFT_OK);
	for (int i = 0; i < STRESS_SUBMITTERS; i++) {
		submitters[i] =
			(struct stress_submitter){pool, i * (STRESS_ITEMS / STRESS_SUBMITTERS),
						  STRESS_ITEMS / STRESS_SUBMITTERS, 0};
		ck_assert_int_eq(
			pthread_create(&threads[i], NULL, stress_submitter_main, &submitters[i]),
			0);
	}
	for (int i = 0; i < STRESS_SUBMITTERS; i++) {
		ck_assert_int_eq(pthread_join(threads[i], &failed), 0);
		ck_assert_ptr_null(failed);
	}
	deadline = now_seconds() + TEST_DEADLINE_SECONDS;
	while (atomic_load_explicit(&stress_done_total, memory_order_acquire) < STRESS_ITEMS) {
		ck_assert_msg(now_seconds() < deadline, "only %ld of %d items done",
			      atomic_load(&stress_done_total), STRESS_ITEMS);
		pause_briefly();
	}
	threadpool_shutdown(pool);
	for (int i = 0; i < STRESS_ITEMS; i++) {
		ck_assert_msg(atomic_load(&stress_items[i].runs) == 1, "item %d ran %d times", i,
			      atomic_load(&stress_items[i].runs));
		ck_assert_msg(atomic_load(&stress_items[i].dones) == 1, "item %d done %d times", i,
			      atomic_load(&stress_items[i].dones));
	}
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.completed, STRESS_ITEMS);
	ck_assert_uint_eq(stats.cancelled, 0);
	threadpool_free(pool);
	free(stress_items);
}
END_TEST


/* One thread; user 1 queues 990 items behind a running one, then user 2
 * queues one: user 2's item is the second to run, not the 991st. */
START_TEST(users_take_turns_for_threads)
{
	enum { A_ITEMS = 990 }; /* run_order holds 1,000 */
	struct threadpool *pool;
	static struct item items[A_ITEMS + 2];
	struct threadpool_stats stats;

	ck_assert_weft(threadpool_create(1, A_ITEMS + 8, &pool), WEFT_OK);
	item_init(&items[0], ITEM_GATED, 0);
	threadpool_work_set_key(&items[0].work, 1);
	ck_assert_weft(threadpool_submit(pool, &items[0].work), WEFT_OK);
	wait_for_stats(pool, 1, 0);
	for (int i = 1; i <= A_ITEMS; i++) {
		item_init(&items[i], ITEM_NOOP, i);
		threadpool_work_set_key(&items[i].work, 1);
		ck_assert_weft(threadpool_submit(pool, &items[i].work), WEFT_OK);
	}
	item_init(&items[A_ITEMS + 1], ITEM_NOOP, -2);
	threadpool_work_set_key(&items[A_ITEMS + 1].work, 2);
	ck_assert_weft(threadpool_submit(pool, &items[A_ITEMS + 1].work), WEFT_OK);
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.queued_keys, 2);
	gate_open();
	wait_for_dones(A_ITEMS + 2);
	ck_assert_int_eq(run_order[0], 0);
	/* user 1's queue had its turn first (it was waiting first), then user 2's */
	ck_assert_int_eq(run_order[1], 1);
	ck_assert_int_eq(run_order[2], -2);
	for (int i = 3; i < A_ITEMS + 2; i++)
		ck_assert_int_eq(run_order[i], i - 1);
	threadpool_free(pool);
}
END_TEST

/* A cancelled sleep gives its thread back at once, and until it has, stats
 * counts the thread as held by a cancelled call. */
START_TEST(a_cancelled_sleep_gives_its_thread_back)
{
	struct threadpool *pool;
	struct item sleeper, next;
	struct threadpool_stats stats;

	ck_assert_weft(threadpool_create(1, 8, &pool), WEFT_OK);
	item_init(&sleeper, ITEM_SLEEP_UNTIL, 0);
	sleeper.sleep_seconds = 3600; /* an hour: the test's deadline is 20 s */
	ck_assert_weft(threadpool_submit(pool, &sleeper.work), WEFT_OK);
	item_init(&next, ITEM_NOOP, 1);
	ck_assert_weft(threadpool_submit(pool, &next.work), WEFT_OK);
	wait_for_stats(pool, 1, 1);
	ck_assert(!threadpool_cancel(pool, &sleeper.work));
	wait_for_dones(2);
	ck_assert(sleeper.saw_stop);
	ck_assert_int_eq(atomic_load(&next.runs), 1);
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.held_by_cancelled, 0);
	threadpool_free(pool);
}
END_TEST

/* A call that cannot be interrupted holds its thread after a cancel: stats
 * says so until it ends. */
START_TEST(stats_count_threads_held_by_cancelled_calls)
{
	struct threadpool *pool;
	struct item item;
	struct threadpool_stats stats;

	ck_assert_weft(threadpool_create(2, 8, &pool), WEFT_OK);
	item_init(&item, ITEM_GATED, 0);
	ck_assert_weft(threadpool_submit(pool, &item.work), WEFT_OK);
	wait_for_stats(pool, 1, 0);
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.held_by_cancelled, 0);
	ck_assert(!threadpool_cancel(pool, &item.work));
	ck_assert(!threadpool_cancel(pool, &item.work)); /* twice counts once */
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.held_by_cancelled, 1);
	gate_open();
	wait_for_dones(1);
	wait_for_stats(pool, 0, 0);
	threadpool_stats(pool, &stats);
	ck_assert_uint_eq(stats.held_by_cancelled, 0);
	threadpool_free(pool);
}
END_TEST

static Suite *threadpool_suite(void)
{
	Suite *suite = suite_create("threadpool");
	TCase *basics = tcase_create("basics");
	TCase *stress = tcase_create("stress");

	tcase_add_checked_fixture(basics, test_setup, NULL);
	tcase_set_timeout(basics, 60);
	tcase_add_test(basics, create_rejects_bad_sizes);
	tcase_add_test(basics, four_threads_run_four_sleeps_at_once_and_the_fifth_waits);
	tcase_add_test(basics, fifth_item_stays_queued_while_four_threads_are_busy);
	tcase_add_test(basics, one_thread_runs_items_in_submit_order);
	tcase_add_test(basics, full_queue_returns_busy_without_blocking);
	tcase_add_test(basics, submitting_an_item_twice_is_refused);
	tcase_add_test(basics, cancel_removes_a_queued_item_and_calls_done_at_once);
	tcase_add_test(basics, cancel_of_a_running_item_lets_it_complete);
	tcase_add_test(basics, users_take_turns_for_threads);
	tcase_add_test(basics, a_cancelled_sleep_gives_its_thread_back);
	tcase_add_test(basics, stats_count_threads_held_by_cancelled_calls);
	tcase_add_test(basics, shutdown_cancels_queued_items_and_waits_for_running_ones);
	tcase_add_test(basics, idle_pool_uses_no_cpu);
	suite_add_tcase(suite, basics);

	tcase_set_timeout(stress, 120);
	tcase_add_test(stress, stress_many_submitters_every_item_done_exactly_once);
	suite_add_tcase(suite, stress);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(threadpool_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
