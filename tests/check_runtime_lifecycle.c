/*
 * Task lifecycle: results, failure, cancellation (of a sleeping task, of a task awaiting another,
 * of a task never started, of a stackless sleep), await with a timeout, join from a thread that
 * is not a worker, completion callbacks, one-shots, notify, fd waits and the spawn_tree built-in.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/runtime/runtime.h"

static runtime *rt;

static void setup(void)
{
	runtime_config config = {.workers = 2};
	int error = runtime_new(&config, &rt);
	ck_assert_msg(error == WEFT_OK, "runtime_new: %s", weft_strerror(error));
}

static void teardown(void)
{
	runtime_free(rt, 10);
	rt = NULL;
}

static weft_task *inject(weft_task_fn body, void *argument)
{
	weft_task *task;
	int error = runtime_inject(rt, body, argument, NULL, &task);
	ck_assert_msg(error == WEFT_OK, "inject: %s", weft_strerror(error));
	return task;
}

static double now_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* ---- results ---- */

static int returns_json(void *argument)
{
	(void)argument;
	return weft_return_json(json_pack("{s:i}", "answer", 42));
}

static int fails(void *argument)
{
	(void)argument;
	return WEFT_EBADARGS;
}

START_TEST(result_and_failure_reach_the_joiner)
{
	weft_task *good = inject(returns_json, NULL);
	ck_assert_int_eq(runtime_join(good, 10), WEFT_OK);
	json_t *result = weft_task_result(good);
	ck_assert_ptr_nonnull(result);
	ck_assert_int_eq(json_integer_value(json_object_get(result, "answer")), 42);
	ck_assert(weft_task_done(good));
	weft_task_release(good);
	weft_task *bad = inject(fails, NULL);
	ck_assert_int_eq(runtime_join(bad, 10), WEFT_EBADARGS);
	ck_assert_int_eq(weft_task_error(bad), WEFT_EBADARGS);
	weft_task_release(bad);
}
END_TEST

/* ---- cancellation ---- */

typedef struct sleeper_state {
	atomic_int first_sleep;  /* what the long sleep returned */
	atomic_int cleanup_sleep; /* a sleep during cleanup must work again */
	atomic_bool started;
} sleeper_state;

static int long_sleeper(void *argument)
{
	sleeper_state *state = argument;
	atomic_store(&state->started, true);
	int error = weft_sleep(30);
	atomic_store(&state->first_sleep, error);
	atomic_store(&state->cleanup_sleep, weft_sleep(0.001));
	return error;
}

static void wait_until(atomic_bool *flag)
{
	double deadline = now_seconds() + 10;
	while (!atomic_load(flag) && now_seconds() < deadline) {
		struct timespec pause = {0, 1000000};
		nanosleep(&pause, NULL);
	}
	ck_assert(atomic_load(flag));
}

START_TEST(cancel_wakes_a_sleeping_task_with_ecanceled_and_lets_it_clean_up)
{
	sleeper_state state = {0};
	atomic_store(&state.first_sleep, -1);
	atomic_store(&state.cleanup_sleep, -1);
	weft_task *task = inject(long_sleeper, &state);
	wait_until(&state.started);
	double start = now_seconds();
	weft_cancel(task);
	ck_assert_int_eq(runtime_join(task, 10), WEFT_ECANCELED);
	ck_assert(now_seconds() - start < 5);
	ck_assert_int_eq(atomic_load(&state.first_sleep), WEFT_ECANCELED);
	ck_assert_int_eq(atomic_load(&state.cleanup_sleep), WEFT_OK);
	weft_task_release(task);
}
END_TEST

static atomic_bool never_started_ran;

static int must_not_run(void *argument)
{
	(void)argument;
	atomic_store(&never_started_ran, true);
	return WEFT_OK;
}

static int spawn_then_cancel(void *argument)
{
	(void)argument;
	weft_task *child;
	int error = weft_spawn(must_not_run, NULL, NULL, &child);
	if (error != WEFT_OK)
		return error;
	weft_cancel(child); /* before this task blocks, so the child cannot have started */
	error = weft_await(child, 10);
	weft_task_release(child);
	return error;
}

START_TEST(cancelled_task_that_never_started_never_runs)
{
	weft_task *task = inject(spawn_then_cancel, NULL);
	ck_assert_int_eq(runtime_join(task, 10), WEFT_ECANCELED);
	ck_assert(!atomic_load(&never_started_ran));
	weft_task_release(task);
}
END_TEST

typedef struct awaiting_state {
	weft_task *awaited;
	atomic_bool started;
} awaiting_state;

static int await_forever(void *argument)
{
	awaiting_state *state = argument;
	atomic_store(&state->started, true);
	return weft_await(state->awaited, WEFT_FOREVER);
}

START_TEST(cancel_of_an_awaiting_task_leaves_the_awaited_one_running)
{
	sleeper_state sleeping = {0};
	weft_task *awaited = inject(long_sleeper, &sleeping);
	awaiting_state state = {.awaited = awaited};
	weft_task *waiter = inject(await_forever, &state);
	wait_until(&state.started);
	weft_cancel(waiter);
	ck_assert_int_eq(runtime_join(waiter, 10), WEFT_ECANCELED);
	ck_assert(!weft_task_done(awaited));
	weft_cancel(awaited);
	ck_assert_int_eq(runtime_join(awaited, 10), WEFT_ECANCELED);
	weft_task_release(waiter);
	weft_task_release(awaited);
}
END_TEST

START_TEST(cancel_of_a_stackless_sleep)
{
	weft_task *task;
	ck_assert_int_eq(runtime_inject_sleep(rt, 30, json_string("late"), NULL, &task), WEFT_OK);
	ck_assert_int_eq(runtime_join(task, 0.01), WEFT_ETIMEOUT);
	weft_cancel(task);
	ck_assert_int_eq(runtime_join(task, 10), WEFT_ECANCELED);
	weft_task_release(task);
	ck_assert_int_eq(runtime_inject_sleep(rt, 0.01, json_string("on time"), NULL, &task),
			 WEFT_OK);
	ck_assert_int_eq(runtime_join(task, 10), WEFT_OK);
	ck_assert_str_eq(json_string_value(weft_task_result(task)), "on time");
	weft_task_release(task);
}
END_TEST

/* ---- await with a timeout ---- */

static int await_with_timeout(void *argument)
{
	weft_task *awaited = argument;
	double start = now_seconds();
	int error = weft_await(awaited, 0.05);
	double waited = now_seconds() - start;
	if (error != WEFT_ETIMEOUT)
		return WEFT_EINTERNAL;
	if (waited < 0.04 || waited > 5)
		return WEFT_EINVAL;
	weft_cancel(awaited);
	error = weft_await(awaited, 10);
	return error == WEFT_ECANCELED ? WEFT_OK : WEFT_EINTERNAL;
}

START_TEST(await_times_out_then_succeeds_later)
{
	sleeper_state sleeping = {0};
	weft_task *awaited = inject(long_sleeper, &sleeping);
	weft_task *waiter = inject(await_with_timeout, awaited);
	int error = runtime_join(waiter, 20);
	ck_assert_msg(error == WEFT_OK, "await_with_timeout: %s", weft_strerror(error));
	weft_task_release(waiter);
	weft_task_release(awaited);
}
END_TEST

/* ---- joining from outside ---- */

static int short_sleep_returning(void *argument)
{
	(void)argument;
	weft_sleep(0.05);
	return weft_return_int(7);
}

static int tries_to_join_from_a_worker(void *argument)
{
	return runtime_join(argument, 0) == WEFT_EINVAL ? WEFT_OK : WEFT_EINTERNAL;
}

START_TEST(join_from_a_thread_with_a_timeout)
{
	weft_task *task = inject(short_sleep_returning, NULL);
	ck_assert_int_eq(runtime_join(task, 0), WEFT_ETIMEOUT);
	ck_assert_int_eq(runtime_join(task, 10), WEFT_OK);
	ck_assert_int_eq(weft_task_value(task), 7);
	ck_assert_int_eq(runtime_join(task, 0), WEFT_OK); /* done: immediate */
	weft_task *inner = inject(tries_to_join_from_a_worker, task);
	ck_assert_int_eq(runtime_join(inner, 10), WEFT_OK);
	weft_task_release(inner);
	ck_assert_int_eq(weft_await(task, 0), WEFT_EINVAL); /* not in a task: refused */
	weft_task_release(task);
}
END_TEST

typedef struct many_joiners {
	weft_task *task;
	atomic_int ok;
} many_joiners;

static void *joiner_thread(void *argument)
{
	many_joiners *shared = argument;
	if (runtime_join(shared->task, 10) == WEFT_OK)
		atomic_fetch_add(&shared->ok, 1);
	return NULL;
}

START_TEST(many_threads_join_one_task)
{
	many_joiners shared = {.task = inject(short_sleep_returning, NULL)};
	pthread_t threads[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, joiner_thread, &shared), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	ck_assert_int_eq(atomic_load(&shared.ok), 4);
	weft_task_release(shared.task);
}
END_TEST

/* ---- completion callback ---- */

static atomic_int done_calls;
static atomic_int done_error;

static void on_done(weft_task *task, void *argument)
{
	atomic_store(&done_error, weft_task_error(task));
	atomic_fetch_add(&done_calls, *(int *)argument);
}

START_TEST(completion_callback_runs_once_with_the_result)
{
	int weight = 1;
	weft_spawn_options options = {.name = "called-back", .on_done = on_done,
				      .on_done_argument = &weight};
	weft_task *task;
	ck_assert_int_eq(runtime_inject(rt, fails, NULL, &options, &task), WEFT_OK);
	ck_assert_int_eq(runtime_join(task, 10), WEFT_EBADARGS);
	ck_assert_str_eq(weft_task_name(task), "called-back");
	/* The callback runs right after the joiner is released: poll for it. */
	double deadline = now_seconds() + 10;
	while (atomic_load(&done_calls) == 0 && now_seconds() < deadline)
		sched_yield();
	ck_assert_int_eq(atomic_load(&done_calls), 1);
	ck_assert_int_eq(atomic_load(&done_error), WEFT_EBADARGS);
	weft_task_release(task);
	/* Detached tasks (no handle) run their callback too. */
	ck_assert_int_eq(runtime_inject(rt, returns_json, NULL, &options, NULL), WEFT_OK);
	deadline = now_seconds() + 10;
	while (atomic_load(&done_calls) < 2 && now_seconds() < deadline)
		sched_yield();
	ck_assert_int_eq(atomic_load(&done_calls), 2);
}
END_TEST

/* ---- one-shots and notify ---- */

static int awaits_oneshot(void *argument)
{
	weft_oneshot *oneshot = argument;
	int error = weft_oneshot_await(oneshot, 10);
	if (error != WEFT_OK)
		return error;
	return weft_return_json(json_incref(weft_oneshot_result(oneshot)));
}

START_TEST(oneshot_set_from_a_thread_wakes_its_awaiter)
{
	weft_oneshot *oneshot;
	ck_assert_int_eq(weft_oneshot_new(&oneshot), WEFT_OK);
	weft_task *task = inject(awaits_oneshot, oneshot);
	ck_assert_int_eq(runtime_join(task, 0.01), WEFT_ETIMEOUT);
	ck_assert_int_eq(weft_oneshot_set(oneshot, WEFT_OK, json_string("hello")), WEFT_OK);
	ck_assert_int_eq(weft_oneshot_set(oneshot, WEFT_OK, json_string("again")), WEFT_EALREADYSET);
	ck_assert_int_eq(runtime_join(task, 10), WEFT_OK);
	ck_assert_str_eq(json_string_value(weft_task_result(task)), "hello");
	ck_assert_int_eq(runtime_join_oneshot(oneshot, 0), WEFT_OK);
	weft_task_release(task);
	weft_oneshot_release(oneshot);
}
END_TEST

typedef struct notify_state {
	weft_notify *notify;
	atomic_int results[3];
} notify_state;

/* Many threads set one oneshot at once: exactly one of them wins. */
struct oneshot_race {
	weft_oneshot *oneshot;
	atomic_int *winners;
	atomic_int *ready;
};

static void *sets_the_oneshot(void *argument)
{
	struct oneshot_race *race = argument;
	atomic_fetch_add(race->ready, 1);
	while (atomic_load(race->ready) < 4)
		sched_yield(); /* start together, to make the race as close as it gets */
	if (weft_oneshot_set(race->oneshot, WEFT_OK, json_integer(1)) == WEFT_OK)
		atomic_fetch_add(race->winners, 1);
	return NULL;
}

START_TEST(oneshot_set_succeeds_once_however_many_race)
{
	for (int round = 0; round < 2000; round++) {
		weft_oneshot *oneshot;
		atomic_int winners = 0, ready = 0;
		ck_assert_int_eq(weft_oneshot_new(&oneshot), WEFT_OK);
		struct oneshot_race race = {oneshot, &winners, &ready};
		pthread_t threads[4];
		for (int i = 0; i < 4; i++)
			ck_assert_int_eq(pthread_create(&threads[i], NULL, sets_the_oneshot, &race), 0);
		for (int i = 0; i < 4; i++)
			pthread_join(threads[i], NULL);
		int won = atomic_load(&winners);
		ck_assert_int_eq(won, 1);
		weft_oneshot_release(oneshot);
	}
}
END_TEST

static int notify_body(void *argument)
{
	notify_state *state = argument;
	atomic_store(&state->results[0], weft_notify_wait(state->notify, 10)); /* permit kept */
	atomic_store(&state->results[1], weft_notify_wait(state->notify, 0.02)); /* none: timeout */
	atomic_store(&state->results[2], weft_notify_wait(state->notify, 10)); /* signalled later */
	return WEFT_OK;
}

START_TEST(notify_keeps_one_permit_and_times_out)
{
	notify_state state = {0};
	ck_assert_int_eq(weft_notify_new(&state.notify), WEFT_OK);
	weft_notify_signal(state.notify); /* before anyone waits */
	weft_task *task = inject(notify_body, &state);
	/* Signal until the third wait returns. */
	double deadline = now_seconds() + 10;
	while (runtime_join(task, 0.05) == WEFT_ETIMEOUT && now_seconds() < deadline)
		weft_notify_signal(state.notify);
	ck_assert(weft_task_done(task));
	ck_assert_int_eq(atomic_load(&state.results[0]), WEFT_OK);
	ck_assert_int_eq(atomic_load(&state.results[1]), WEFT_ETIMEOUT);
	ck_assert_int_eq(atomic_load(&state.results[2]), WEFT_OK);
	weft_task_release(task);
	weft_notify_free(state.notify);
}
END_TEST

/* ---- fd waits ---- */

typedef struct fd_state {
	int fd;
	atomic_int timeout_result;
	atomic_int ready_result;
	atomic_int ready_events;
	atomic_bool waiting;
} fd_state;

static int waits_for_fd(void *argument)
{
	fd_state *state = argument;
	atomic_store(&state->timeout_result, weft_wait_fd(state->fd, EV_READ, 0.02, NULL));
	atomic_store(&state->waiting, true);
	short ready = 0;
	atomic_store(&state->ready_result, weft_wait_fd(state->fd, EV_READ, 10, &ready));
	atomic_store(&state->ready_events, ready);
	return WEFT_OK;
}

START_TEST(wait_fd_times_out_then_sees_data)
{
	int pipe_fds[2];
	ck_assert_int_eq(pipe(pipe_fds), 0);
	fd_state state = {.fd = pipe_fds[0]};
	weft_task *task = inject(waits_for_fd, &state);
	wait_until(&state.waiting);
	ck_assert_int_eq(write(pipe_fds[1], "x", 1), 1);
	ck_assert_int_eq(runtime_join(task, 10), WEFT_OK);
	ck_assert_int_eq(atomic_load(&state.timeout_result), WEFT_ETIMEOUT);
	ck_assert_int_eq(atomic_load(&state.ready_result), WEFT_OK);
	ck_assert(atomic_load(&state.ready_events) & EV_READ);
	weft_task_release(task);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
}
END_TEST

/* ---- posted calls and worker exit ---- */

typedef struct posted {
	atomic_int order[100];
	atomic_int count;
	atomic_int worker_seen;
	atomic_bool outside_task;
	atomic_bool base_matches;
} posted;

static posted calls;

static void posted_call(void *argument)
{
	int number = (int)(intptr_t)argument;
	int slot = atomic_fetch_add(&calls.count, 1);
	if (slot < 100)
		atomic_store(&calls.order[slot], number);
	atomic_store(&calls.worker_seen, weft_worker_index());
	atomic_store(&calls.outside_task, weft_task_current() == NULL);
	struct event_base *mine = runtime_event_base(rt, weft_worker_index());
	atomic_store(&calls.base_matches, mine != NULL && mine == runtime_event_base(rt, 1));
}

START_TEST(posted_calls_run_in_order_on_their_worker)
{
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(runtime_post(rt, 1, posted_call, (void *)(intptr_t)i), WEFT_OK);
	double deadline = now_seconds() + 10;
	while (atomic_load(&calls.count) < 100 && now_seconds() < deadline)
		sched_yield();
	ck_assert_int_eq(atomic_load(&calls.count), 100);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(atomic_load(&calls.order[i]), i);
	ck_assert_int_eq(atomic_load(&calls.worker_seen), 1);
	ck_assert(atomic_load(&calls.outside_task));
	ck_assert(atomic_load(&calls.base_matches));
	ck_assert_int_eq(runtime_post(rt, 2, posted_call, NULL), WEFT_EINVAL);
	ck_assert_int_eq(runtime_post(rt, -1, posted_call, NULL), WEFT_EINVAL);
	ck_assert_ptr_null(runtime_event_base(rt, 2));
}
END_TEST

static atomic_int exits;

static void count_exit(struct event_base *base, void *argument)
{
	if (base != NULL && argument == &exits)
		atomic_fetch_add(&exits, 1);
}

START_TEST(worker_exit_hook_runs_once_per_worker)
{
	runtime_config config = {.workers = 3, .on_worker_exit = count_exit,
				 .on_worker_exit_argument = &exits};
	runtime *other;
	ck_assert_int_eq(runtime_new(&config, &other), WEFT_OK);
	ck_assert_int_eq(runtime_worker_count(other), 3);
	runtime_free(other, 1);
	ck_assert_int_eq(atomic_load(&exits), 3);
}
END_TEST

/* ---- spawn_tree and misuse ---- */

START_TEST(spawn_tree_counts_its_tasks)
{
	int parameters[2] = {3, 4};
	weft_task *task = inject(runtime_spawn_tree_task, parameters);
	ck_assert_int_eq(runtime_join(task, 30), WEFT_OK);
	ck_assert_int_eq(weft_task_value(task), 85); /* 1 + 4 + 16 + 64 */
	weft_task_release(task);
	int too_big[2] = {21, 2};
	task = inject(runtime_spawn_tree_task, too_big);
	ck_assert_int_eq(runtime_join(task, 10), WEFT_EBADARGS);
	weft_task_release(task);
	int64_t count;
	ck_assert_int_eq(runtime_spawn_tree(1, 1, &count), WEFT_EINVAL); /* not in a task */
}
END_TEST

START_TEST(task_calls_outside_a_task_are_refused)
{
	ck_assert_int_eq(weft_sleep(0.01), WEFT_EINVAL);
	ck_assert_int_eq(weft_yield(), WEFT_EINVAL);
	ck_assert_int_eq(weft_spawn(fails, NULL, NULL, NULL), WEFT_EINVAL);
	ck_assert_int_eq(weft_return_int(1), WEFT_EINVAL);
	ck_assert_int_eq(weft_wait_fd(0, EV_READ, 0, NULL), WEFT_EINVAL);
	ck_assert_ptr_null(weft_event_base());
	ck_assert_ptr_null(weft_task_current());
	ck_assert_int_eq(weft_worker_index(), -1);
	runtime_config bad = {.workers = -1};
	runtime *unused;
	ck_assert_int_eq(runtime_new(&bad, &unused), WEFT_EINVAL);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("runtime_lifecycle");
	TCase *cases = tcase_create("lifecycle");
	tcase_add_checked_fixture(cases, setup, teardown);
	tcase_set_timeout(cases, 60);
	tcase_add_test(cases, result_and_failure_reach_the_joiner);
	tcase_add_test(cases, cancel_wakes_a_sleeping_task_with_ecanceled_and_lets_it_clean_up);
	tcase_add_test(cases, cancelled_task_that_never_started_never_runs);
	tcase_add_test(cases, cancel_of_an_awaiting_task_leaves_the_awaited_one_running);
	tcase_add_test(cases, cancel_of_a_stackless_sleep);
	tcase_add_test(cases, await_times_out_then_succeeds_later);
	tcase_add_test(cases, join_from_a_thread_with_a_timeout);
	tcase_add_test(cases, many_threads_join_one_task);
	tcase_add_test(cases, completion_callback_runs_once_with_the_result);
	tcase_add_test(cases, oneshot_set_from_a_thread_wakes_its_awaiter);
	tcase_add_test(cases, oneshot_set_succeeds_once_however_many_race);
	tcase_add_test(cases, notify_keeps_one_permit_and_times_out);
	tcase_add_test(cases, wait_fd_times_out_then_sees_data);
	tcase_add_test(cases, posted_calls_run_in_order_on_their_worker);
	tcase_add_test(cases, worker_exit_hook_runs_once_per_worker);
	tcase_add_test(cases, spawn_tree_counts_its_tasks);
	tcase_add_test(cases, task_calls_outside_a_task_are_refused);
	suite_add_tcase(suite, cases);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
