/* slots: the gate grants at most N slots, in priority-then-FIFO order, hands
 * slots over on release, and lets a queued waiter leave. */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "daemon/core/slots.h"
#include "weft/error.h"

/* A job in a queue: records the order in which wakes arrive. */
struct fake_job {
	struct slots_waiter waiter;
	int id;
	int *order;       /* shared log of woken ids */
	size_t *order_count;
};

static void record_wake(void *arg)
{
	struct fake_job *job = arg;
	job->order[(*job->order_count)++] = job->id;
}

static struct slots *make_gate(unsigned limit)
{
	struct slots *gate = NULL;
	ck_assert_int_eq(slots_new(limit, &gate), WEFT_OK);
	return gate;
}

START_TEST(test_limit_zero_is_refused)
{
	struct slots *gate = NULL;
	ck_assert_int_eq(slots_new(0, &gate), WEFT_EINVAL);
	ck_assert_ptr_null(gate);
}
END_TEST

START_TEST(test_grants_up_to_the_limit_then_queues)
{
	struct slots *gate = make_gate(2);
	struct fake_job jobs[3];
	int order[3];
	size_t count = 0;

	for (int i = 0; i < 3; i++)
		jobs[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
	ck_assert_int_eq(slots_acquire(gate, &jobs[0].waiter, 0, record_wake, &jobs[0]), SLOTS_ACQUIRED);
	ck_assert_int_eq(slots_acquire(gate, &jobs[1].waiter, 0, record_wake, &jobs[1]), SLOTS_ACQUIRED);
	ck_assert_int_eq(slots_acquire(gate, &jobs[2].waiter, 0, record_wake, &jobs[2]), SLOTS_QUEUED);
	ck_assert(!slots_try_acquire(gate));
	ck_assert_uint_eq(slots_held(gate), 2);
	ck_assert_uint_eq(slots_queued(gate), 1);
	ck_assert_uint_eq(count, 0);

	slots_release(gate); /* hands the slot to job 2 */
	ck_assert_uint_eq(count, 1);
	ck_assert_int_eq(order[0], 2);
	ck_assert_uint_eq(slots_held(gate), 2);
	ck_assert_uint_eq(slots_queued(gate), 0);
	slots_release(gate);
	slots_release(gate);
	ck_assert_uint_eq(slots_held(gate), 0);
	ck_assert(slots_try_acquire(gate));
	slots_release(gate);
	slots_free(gate);
}
END_TEST

START_TEST(test_waiters_are_woken_in_fifo_order)
{
	struct slots *gate = make_gate(1);
	struct fake_job jobs[10];
	int order[10];
	size_t count = 0;

	ck_assert(slots_try_acquire(gate));
	for (int i = 0; i < 10; i++) {
		jobs[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
		ck_assert_int_eq(slots_acquire(gate, &jobs[i].waiter, 0, record_wake, &jobs[i]),
			SLOTS_QUEUED);
	}
	for (int i = 0; i < 10; i++) {
		slots_release(gate);
		ck_assert_uint_eq(count, (size_t)i + 1);
		ck_assert_int_eq(order[i], i);
	}
	slots_release(gate);
	ck_assert_uint_eq(slots_held(gate), 0);
	slots_free(gate);
}
END_TEST

START_TEST(test_higher_priority_goes_first_fifo_among_equals)
{
	struct slots *gate = make_gate(1);
	static const int64_t priorities[6] = {0, 5, 0, 5, 9, -1};
	static const int expected[6] = {4, 1, 3, 0, 2, 5};
	struct fake_job jobs[6];
	int order[6];
	size_t count = 0;

	ck_assert(slots_try_acquire(gate));
	for (int i = 0; i < 6; i++) {
		jobs[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
		slots_acquire(gate, &jobs[i].waiter, priorities[i], record_wake, &jobs[i]);
	}
	for (int i = 0; i < 6; i++)
		slots_release(gate);
	ck_assert_uint_eq(count, 6);
	for (int i = 0; i < 6; i++)
		ck_assert_msg(order[i] == expected[i], "position %d: job %d, want %d", i, order[i],
			expected[i]);
	slots_release(gate);
	slots_free(gate);
}
END_TEST

START_TEST(test_cancel_of_a_queued_waiter_removes_it)
{
	struct slots *gate = make_gate(1);
	struct fake_job jobs[3];
	int order[3];
	size_t count = 0;

	ck_assert(slots_try_acquire(gate));
	for (int i = 0; i < 3; i++) {
		jobs[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
		slots_acquire(gate, &jobs[i].waiter, 0, record_wake, &jobs[i]);
	}
	ck_assert(slots_cancel(gate, &jobs[1].waiter));
	ck_assert(!slots_cancel(gate, &jobs[1].waiter)); /* not queued any more */
	ck_assert_uint_eq(slots_queued(gate), 2);
	slots_release(gate);
	slots_release(gate);
	ck_assert_uint_eq(count, 2);
	ck_assert_int_eq(order[0], 0);
	ck_assert_int_eq(order[1], 2);
	/* A granted waiter cannot be cancelled: the slot is its, to release. */
	ck_assert(!slots_cancel(gate, &jobs[2].waiter));
	slots_release(gate);
	ck_assert_uint_eq(slots_held(gate), 0);
	slots_free(gate);
}
END_TEST

START_TEST(test_cancel_of_the_only_waiter_and_of_the_last)
{
	struct slots *gate = make_gate(1);
	struct fake_job jobs[2];
	int order[2];
	size_t count = 0;

	ck_assert(slots_try_acquire(gate));
	for (int i = 0; i < 2; i++) {
		jobs[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
		slots_acquire(gate, &jobs[i].waiter, 0, record_wake, &jobs[i]);
	}
	ck_assert(slots_cancel(gate, &jobs[1].waiter)); /* the tail */
	ck_assert(slots_cancel(gate, &jobs[0].waiter)); /* now the only one */
	ck_assert_uint_eq(slots_queued(gate), 0);
	slots_release(gate);
	ck_assert_uint_eq(count, 0);
	ck_assert_uint_eq(slots_held(gate), 0);
	slots_free(gate);
}
END_TEST

START_TEST(test_raising_the_limit_wakes_waiters)
{
	struct slots *gate = make_gate(1);
	struct fake_job jobs[40];
	int order[40];
	size_t count = 0;

	ck_assert(slots_try_acquire(gate));
	for (int i = 0; i < 40; i++) {
		jobs[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
		slots_acquire(gate, &jobs[i].waiter, 0, record_wake, &jobs[i]);
	}
	ck_assert_int_eq(slots_set_limit(gate, 31), WEFT_OK); /* more than one batch */
	ck_assert_uint_eq(count, 30);
	for (int i = 0; i < 30; i++)
		ck_assert_int_eq(order[i], i);
	ck_assert_uint_eq(slots_held(gate), 31);
	ck_assert_int_eq(slots_set_limit(gate, 1), WEFT_OK);
	/* Lowered: releases do not grant until held drops below the new limit. */
	for (int i = 0; i < 30; i++)
		slots_release(gate);
	ck_assert_uint_eq(count, 30);
	slots_release(gate); /* held 0 < 1: job 30 */
	ck_assert_uint_eq(count, 31);
	ck_assert_int_eq(slots_set_limit(gate, 0), WEFT_EINVAL);
	for (int i = 31; i < 40; i++)
		ck_assert(slots_cancel(gate, &jobs[i].waiter));
	slots_release(gate);
	slots_free(gate);
}
END_TEST

/* ------------------------------------------------------------- threads */

#define THREADS 8
#define ROUNDS 3000
#define LIMIT 3

static struct slots *shared_gate;
static atomic_int inside;
static atomic_int most_inside;

struct thread_waiter {
	struct slots_waiter waiter;
	atomic_int granted; /* set by the wake, on the releasing thread */
};

static void thread_wake(void *arg)
{
	struct thread_waiter *waiter = arg;
	/* release: the waiter's thread reads it with acquire and then owns the slot. */
	atomic_store_explicit(&waiter->granted, 1, memory_order_release);
}

static void enter_and_leave(void)
{
	int now = atomic_fetch_add(&inside, 1) + 1;
	int seen = atomic_load(&most_inside);
	while (now > seen && !atomic_compare_exchange_weak(&most_inside, &seen, now))
		;
	ck_assert_int_le(now, LIMIT);
	atomic_fetch_sub(&inside, 1);
}

static void *thread_main(void *unused)
{
	(void)unused;
	for (int round = 0; round < ROUNDS; round++) {
		struct thread_waiter waiter;
		atomic_init(&waiter.granted, 0);
		if (slots_acquire(shared_gate, &waiter.waiter, round % 3, thread_wake, &waiter) ==
			SLOTS_QUEUED) {
			/* Every fifth round changes its mind while queued. */
			if (round % 5 == 0 && slots_cancel(shared_gate, &waiter.waiter))
				continue;
			while (!atomic_load_explicit(&waiter.granted, memory_order_acquire))
				sched_yield();
		}
		enter_and_leave();
		slots_release(shared_gate);
	}
	return NULL;
}

START_TEST(test_a_paused_gate_grants_nothing_until_resumed)
{
	struct slots *gate = make_gate(2);
	struct fake_job jobs[3];
	int order[3];
	size_t count = 0;

	ck_assert(slots_try_acquire(gate));
	slots_set_paused(gate, true);
	ck_assert(slots_paused(gate));
	/* Room for one more, but paused: everyone queues, and a release hands nothing on. */
	for (int i = 0; i < 3; i++) {
		jobs[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
		ck_assert_int_eq(slots_acquire(gate, &jobs[i].waiter, 0, record_wake, &jobs[i]),
		                 SLOTS_QUEUED);
	}
	slots_release(gate);
	ck_assert_uint_eq(count, 0);
	ck_assert_uint_eq(slots_held(gate), 0);
	/* Resumed: granted up to the limit, in order. */
	slots_set_paused(gate, false);
	ck_assert_uint_eq(count, 2);
	ck_assert_int_eq(order[0], 0);
	ck_assert_int_eq(order[1], 1);
	slots_release(gate);
	ck_assert_uint_eq(count, 3);
	slots_release(gate);
	slots_release(gate);
	slots_free(gate);
}
END_TEST

START_TEST(test_never_more_than_the_limit_across_threads)
{
	pthread_t threads[THREADS];

	shared_gate = make_gate(LIMIT);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, thread_main, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	ck_assert_int_le(atomic_load(&most_inside), LIMIT);
	ck_assert_int_ge(atomic_load(&most_inside), 1);
	ck_assert_uint_eq(slots_held(shared_gate), 0);
	ck_assert_uint_eq(slots_queued(shared_gate), 0);
	slots_free(shared_gate);
}
END_TEST


/* One user (key 1) has 100,000 jobs queued; another (key 2) queues one: it is
 * granted by the second release, not after A's 100,000. */
START_TEST(test_a_single_job_of_another_user_is_granted_next)
{
	enum { A_JOBS = 100000 };
	struct slots *gate = make_gate(1);
	struct fake_job *a = calloc(A_JOBS, sizeof(*a));
	struct fake_job b;
	int *order = calloc(A_JOBS + 1, sizeof(*order));
	size_t count = 0;
	struct fake_job holder;

	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(slots_acquire_as(gate, &holder.waiter, 1, 0, record_wake, &holder),
	                 SLOTS_ACQUIRED);
	for (int i = 0; i < A_JOBS; i++) {
		a[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
		ck_assert_int_eq(slots_acquire_as(gate, &a[i].waiter, 1, 0, record_wake, &a[i]),
		                 SLOTS_QUEUED);
	}
	b = (struct fake_job){.id = -1, .order = order, .order_count = &count};
	ck_assert_int_eq(slots_acquire_as(gate, &b.waiter, 2, 0, record_wake, &b), SLOTS_QUEUED);
	ck_assert_uint_eq(slots_queued_keys(gate), 2);

	slots_release(gate);
	slots_release(gate);
	ck_assert_uint_eq(count, 2);
	ck_assert_int_eq(order[0], 0);  /* A's turn came first: its key was queued first */
	ck_assert_int_eq(order[1], -1); /* then B's, ahead of A's other 99,999 */
	/* A's jobs keep their own order. */
	for (int i = 1; i < A_JOBS; i++)
		slots_release(gate);
	ck_assert_uint_eq(count, A_JOBS + 1);
	for (int i = 2; i <= A_JOBS; i++)
		ck_assert_int_eq(order[i], i - 1);
	ck_assert_uint_eq(slots_queued(gate), 0);
	slots_release(gate);
	slots_free(gate);
	free(order);
	free(a);
}
END_TEST

/* A priority orders only its own user's waiters: user 1's priority 1000 does
 * not overtake user 2's priority 0, but does overtake user 1's own 0. */
START_TEST(test_priority_orders_only_the_users_own_waiters)
{
	struct slots *gate = make_gate(1);
	struct fake_job jobs[4];
	int order[4];
	size_t count = 0;
	struct fake_job holder;

	ck_assert_int_eq(slots_acquire_as(gate, &holder.waiter, 9, 0, record_wake, &holder),
	                 SLOTS_ACQUIRED);
	for (int i = 0; i < 4; i++)
		jobs[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
	slots_acquire_as(gate, &jobs[0].waiter, 2, 0, record_wake, &jobs[0]);
	slots_acquire_as(gate, &jobs[1].waiter, 1, 0, record_wake, &jobs[1]);
	slots_acquire_as(gate, &jobs[2].waiter, 1, 1000, record_wake, &jobs[2]);
	slots_acquire_as(gate, &jobs[3].waiter, 2, 0, record_wake, &jobs[3]);
	for (int i = 0; i < 4; i++)
		slots_release(gate);
	ck_assert_uint_eq(count, 4);
	ck_assert_int_eq(order[0], 0); /* user 2, first to queue */
	ck_assert_int_eq(order[1], 2); /* user 1's priority 1000, before its own 0 */
	ck_assert_int_eq(order[2], 3); /* user 2 again: turns alternate */
	ck_assert_int_eq(order[3], 1);
	slots_release(gate);
	slots_free(gate);
}
END_TEST

/* Cancelling the first waiter of a user (its stand-in in the ring of users)
 * keeps that user's other waiters in turn. */
START_TEST(test_cancel_of_a_users_first_waiter_keeps_its_others)
{
	struct slots *gate = make_gate(1);
	struct fake_job jobs[4];
	int order[4];
	size_t count = 0;
	struct fake_job holder;

	ck_assert_int_eq(slots_acquire_as(gate, &holder.waiter, 9, 0, record_wake, &holder),
	                 SLOTS_ACQUIRED);
	for (int i = 0; i < 4; i++)
		jobs[i] = (struct fake_job){.id = i, .order = order, .order_count = &count};
	slots_acquire_as(gate, &jobs[0].waiter, 1, 0, record_wake, &jobs[0]);
	slots_acquire_as(gate, &jobs[1].waiter, 2, 0, record_wake, &jobs[1]);
	slots_acquire_as(gate, &jobs[2].waiter, 1, 0, record_wake, &jobs[2]);
	slots_acquire_as(gate, &jobs[3].waiter, 2, 0, record_wake, &jobs[3]);
	ck_assert(slots_cancel(gate, &jobs[0].waiter));
	ck_assert(slots_cancel(gate, &jobs[3].waiter));
	ck_assert(!slots_cancel(gate, &jobs[3].waiter));
	ck_assert_uint_eq(slots_queued(gate), 2);
	slots_release(gate);
	slots_release(gate);
	ck_assert_uint_eq(count, 2);
	ck_assert_int_eq(order[0], 2);
	ck_assert_int_eq(order[1], 1);
	ck_assert_uint_eq(slots_queued_keys(gate), 0);
	slots_release(gate);
	slots_free(gate);
}
END_TEST

static Suite *slots_suite(void)
{
	Suite *suite = suite_create("slots");
	TCase *single = tcase_create("single thread");
	TCase *threads = tcase_create("threads");

	tcase_add_test(single, test_limit_zero_is_refused);
	tcase_add_test(single, test_grants_up_to_the_limit_then_queues);
	tcase_add_test(single, test_waiters_are_woken_in_fifo_order);
	tcase_add_test(single, test_higher_priority_goes_first_fifo_among_equals);
	tcase_add_test(single, test_cancel_of_a_queued_waiter_removes_it);
	tcase_add_test(single, test_cancel_of_the_only_waiter_and_of_the_last);
	tcase_add_test(single, test_raising_the_limit_wakes_waiters);
	tcase_add_test(single, test_a_paused_gate_grants_nothing_until_resumed);
	tcase_add_test(single, test_a_single_job_of_another_user_is_granted_next);
	tcase_add_test(single, test_priority_orders_only_the_users_own_waiters);
	tcase_add_test(single, test_cancel_of_a_users_first_waiter_keeps_its_others);
	tcase_add_test(threads, test_never_more_than_the_limit_across_threads);
	tcase_set_timeout(threads, 60);
	suite_add_tcase(suite, single);
	suite_add_tcase(suite, threads);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(slots_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
