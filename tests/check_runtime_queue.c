/*
 * The run queue (daemon/runtime/runqueue.c): owner order, thief order, the full case, and a
 * stress test where the owner pushes and pops while several thieves steal: every item must be
 * taken exactly once. The stress test is meant to run under ThreadSanitizer too (make check-tsan).
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/runtime/runqueue.h"

#define ITEM(n) ((void *)(uintptr_t)(n))

START_TEST(owner_takes_newest_first)
{
	runqueue queue;
	runqueue_init(&queue);
	for (uintptr_t i = 1; i <= 5; i++)
		ck_assert(runqueue_push(&queue, ITEM(i)));
	ck_assert_uint_eq(runqueue_length(&queue), 5);
	for (uintptr_t i = 5; i >= 1; i--)
		ck_assert_ptr_eq(runqueue_pop(&queue), ITEM(i));
	ck_assert_ptr_null(runqueue_pop(&queue));
	ck_assert_ptr_null(runqueue_pop(&queue)); /* empty twice: indices must not drift */
	ck_assert_uint_eq(runqueue_length(&queue), 0);
}
END_TEST

START_TEST(thief_takes_oldest_first)
{
	runqueue queue;
	runqueue_init(&queue);
	for (uintptr_t i = 1; i <= 3; i++)
		runqueue_push(&queue, ITEM(i));
	ck_assert_ptr_eq(runqueue_steal(&queue), ITEM(1));
	ck_assert_ptr_eq(runqueue_pop(&queue), ITEM(3));
	ck_assert_ptr_eq(runqueue_steal(&queue), ITEM(2));
	ck_assert_ptr_null(runqueue_steal(&queue));
	ck_assert_ptr_null(runqueue_pop(&queue));
}
END_TEST

START_TEST(full_queue_refuses_then_gives_half)
{
	runqueue queue;
	runqueue_init(&queue);
	void *batch[RUNQUEUE_CAPACITY / 2];
	ck_assert_int_eq(runqueue_take_half(&queue, batch), 0); /* not full: nothing */
	for (uintptr_t i = 0; i < RUNQUEUE_CAPACITY; i++)
		ck_assert(runqueue_push(&queue, ITEM(i + 1)));
	ck_assert(!runqueue_push(&queue, ITEM(999)));
	ck_assert_int_eq(runqueue_take_half(&queue, batch), RUNQUEUE_CAPACITY / 2);
	for (uintptr_t i = 0; i < RUNQUEUE_CAPACITY / 2; i++)
		ck_assert_ptr_eq(batch[i], ITEM(i + 1)); /* the oldest half, oldest first */
	ck_assert_uint_eq(runqueue_length(&queue), RUNQUEUE_CAPACITY / 2);
	ck_assert(runqueue_push(&queue, ITEM(999)));
	ck_assert_ptr_eq(runqueue_pop(&queue), ITEM(999));
}
END_TEST

START_TEST(wraps_around_many_times)
{
	runqueue queue;
	runqueue_init(&queue);
	for (uintptr_t round = 0; round < 10000; round++) {
		ck_assert(runqueue_push(&queue, ITEM(round + 1)));
		ck_assert(runqueue_push(&queue, ITEM(round + 2)));
		ck_assert_ptr_eq(runqueue_steal(&queue), ITEM(round + 1));
		ck_assert_ptr_eq(runqueue_pop(&queue), ITEM(round + 2));
	}
	ck_assert_uint_eq(runqueue_length(&queue), 0);
}
END_TEST

/* ---- stress ---- */

enum { STRESS_ITEMS = 200000, THIEVES = 3 };

typedef struct stress {
	runqueue queue;
	atomic_uchar taken[STRESS_ITEMS + 1];
	atomic_bool owner_done;
	atomic_long total;
	atomic_long duplicates;
} stress;

static void stress_take(stress *shared, void *item)
{
	uintptr_t n = (uintptr_t)item;
	if (n == 0 || n > STRESS_ITEMS || atomic_fetch_add(&shared->taken[n], 1) != 0)
		atomic_fetch_add(&shared->duplicates, 1);
	atomic_fetch_add(&shared->total, 1);
}

static void *stress_thief(void *argument)
{
	stress *shared = argument;
	for (;;) {
		void *item = runqueue_steal(&shared->queue);
		if (item != NULL) {
			stress_take(shared, item);
			continue;
		}
		if (atomic_load(&shared->owner_done) && runqueue_length(&shared->queue) == 0)
			return NULL;
	}
}

START_TEST(owner_and_thieves_take_every_item_once)
{
	stress *shared = calloc(1, sizeof *shared);
	ck_assert_ptr_nonnull(shared);
	runqueue_init(&shared->queue);
	pthread_t thieves[THIEVES];
	for (int i = 0; i < THIEVES; i++)
		ck_assert_int_eq(pthread_create(&thieves[i], NULL, stress_thief, shared), 0);
	uintptr_t next = 1;
	unsigned seed = 12345;
	void *batch[RUNQUEUE_CAPACITY / 2];
	while (next <= STRESS_ITEMS) {
		/* Push a few, pop some: exercises the contended last item often. */
		int pushes = 1 + (int)(rand_r(&seed) % 4);
		for (int i = 0; i < pushes && next <= STRESS_ITEMS; i++) {
			while (!runqueue_push(&shared->queue, ITEM(next))) {
				int count = runqueue_take_half(&shared->queue, batch);
				for (int j = 0; j < count; j++)
					stress_take(shared, batch[j]);
			}
			next++;
		}
		int pops = (int)(rand_r(&seed) % 4);
		for (int i = 0; i < pops; i++) {
			void *item = runqueue_pop(&shared->queue);
			if (item != NULL)
				stress_take(shared, item);
		}
	}
	void *item;
	while ((item = runqueue_pop(&shared->queue)) != NULL)
		stress_take(shared, item);
	atomic_store(&shared->owner_done, true);
	for (int i = 0; i < THIEVES; i++)
		pthread_join(thieves[i], NULL);
	ck_assert_int_eq(atomic_load(&shared->duplicates), 0);
	ck_assert_int_eq(atomic_load(&shared->total), STRESS_ITEMS);
	for (int n = 1; n <= STRESS_ITEMS; n++)
		ck_assert_msg(atomic_load(&shared->taken[n]) == 1, "item %d taken %d times", n,
			      atomic_load(&shared->taken[n]));
	free(shared);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("runtime_queue");
	TCase *order = tcase_create("order");
	tcase_add_test(order, owner_takes_newest_first);
	tcase_add_test(order, thief_takes_oldest_first);
	tcase_add_test(order, full_queue_refuses_then_gives_half);
	tcase_add_test(order, wraps_around_many_times);
	suite_add_tcase(suite, order);
	TCase *concurrent = tcase_create("concurrent");
	tcase_set_timeout(concurrent, 120);
	tcase_add_test(concurrent, owner_and_thieves_take_every_item_once);
	suite_add_tcase(suite, concurrent);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
