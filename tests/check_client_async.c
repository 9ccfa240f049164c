/*
 * libweft's asynchronous API (weft/async.h) against a real weftd
 * (tests/fixture.h): callbacks and completion queues, many calls in flight
 * from one thread, the fd's readiness, cancelling a call in flight, weft_close
 * ending what is outstanding exactly once, the batch result split to fit
 * max_message, and every allocation failure of a start reported as
 * WEFT_ENOMEM without leaks.
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fixture.h"
#include "tests/weft_assert.h"
#include "weft/weft.h"

static fixture weftd;
static weft_client *client;

static void start_daemon_with(const char *const *arguments)
{
	fixture_start(&weftd, arguments);
	assert_weft(weft_connect(weftd.url, &client), WEFT_OK);
}

static void stop_daemon(void)
{
	weft_close(client);
	client = NULL;
	fixture_stop(&weftd);
}

static weft_job_spec *echo_spec(json_int_t value)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("echo", &spec), WEFT_OK);
	json_t *args = json_pack("{s:I}", "value", value);
	assert_weft(weft_job_spec_set_args(spec, args), WEFT_OK);
	json_decref(args);
	return spec;
}

static weft_job_spec *sleep_spec(double seconds)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("sleep", &spec), WEFT_OK);
	json_t *args = json_pack("{s:f}", "seconds", seconds);
	assert_weft(weft_job_spec_set_args(spec, args), WEFT_OK);
	json_decref(args);
	return spec;
}

/* Takes one call from the queue, waiting for the fd with poll as a loop would. */
static weft_call *next_by_fd(weft_completion_queue *queue)
{
	for (;;) {
		weft_call *call = NULL;
		assert_weft(weft_completion_queue_next(queue, &call), WEFT_OK);
		if (call != NULL)
			return call;
		struct pollfd ready = {.fd = weft_completion_queue_fd(queue), .events = POLLIN};
		ck_assert_int_eq(poll(&ready, 1, -1), 1);
	}
}

/* ----------------------------------------------------- completion queue */

START_TEST(test_a_thousand_submit_waits_in_flight_from_one_thread_by_fd)
{
	start_daemon_with(NULL);
	weft_completion_queue *queue = NULL;
	assert_weft(weft_completion_queue_new(&queue), WEFT_OK);
	struct pollfd idle = {.fd = weft_completion_queue_fd(queue), .events = POLLIN};
	ck_assert_int_eq(poll(&idle, 1, 0), 0); /* empty: not readable */
	enum { COUNT = 1000 };
	weft_notify notify = {.queue = queue};
	for (json_int_t i = 0; i < COUNT; i++) {
		weft_job_spec *spec = echo_spec(i);
		notify.user_data = (void *)(intptr_t)(i + 1);
		assert_weft(weft_submit_wait_async(client, spec, 30, &notify, NULL), WEFT_OK);
		weft_job_spec_free(spec);
	}
	static bool seen[COUNT];
	for (int got = 0; got < COUNT; got++) {
		weft_call *call = next_by_fd(queue);
		assert_weft(weft_call_error(call), WEFT_OK);
		intptr_t tag = (intptr_t)weft_call_user_data(call) - 1;
		const weft_outcome *outcome = weft_call_outcome(call);
		ck_assert_ptr_nonnull(outcome);
		ck_assert_int_eq(outcome->state, WEFT_STATE_DONE);
		ck_assert_int_eq(json_integer_value(outcome->result), tag);
		ck_assert(!seen[tag]);
		seen[tag] = true;
		weft_call_free(call);
	}
	ck_assert_int_eq(poll(&idle, 1, 0), 0); /* drained: not readable again */
	weft_call *none = (weft_call *)&none;
	assert_weft(weft_completion_queue_next(queue, &none), WEFT_OK);
	ck_assert_ptr_null(none);
	stop_daemon();
	weft_completion_queue_free(queue);
}
END_TEST

/* --------------------------------------------------------------- callbacks */

typedef struct tally {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls[8]; /* by error code, the ones a test looks at */
	int total;
	pthread_t caller;
	bool on_caller_thread;
} tally;

static tally counts = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void count_call(weft_call *call, void *user_data)
{
	(void)user_data;
	pthread_mutex_lock(&counts.lock);
	int code = weft_call_error(call);
	if (code == WEFT_OK)
		counts.calls[0]++;
	else if (code == WEFT_ECANCELED)
		counts.calls[1]++;
	else if (code == WEFT_ECLOSED)
		counts.calls[2]++;
	else
		counts.calls[3]++;
	if (pthread_equal(pthread_self(), counts.caller))
		counts.on_caller_thread = true;
	counts.total++;
	pthread_cond_broadcast(&counts.cond);
	pthread_mutex_unlock(&counts.lock);
	weft_call_free(call);
}

static void wait_for_total(int total)
{
	pthread_mutex_lock(&counts.lock);
	while (counts.total < total)
		pthread_cond_wait(&counts.cond, &counts.lock);
	pthread_mutex_unlock(&counts.lock);
}

START_TEST(test_callbacks_run_on_nng_threads_once_each)
{
	start_daemon_with(NULL);
	counts.caller = pthread_self();
	weft_notify notify = {.callback = count_call};
	enum { COUNT = 500 };
	for (int i = 0; i < COUNT; i++) {
		weft_job_spec *spec = echo_spec(i);
		assert_weft(weft_submit_async(client, spec, &notify, NULL), WEFT_OK);
		weft_job_spec_free(spec);
	}
	assert_weft(weft_ping_async(client, &notify, NULL), WEFT_OK);
	wait_for_total(COUNT + 1);
	ck_assert_int_eq(counts.calls[0], COUNT + 1);
	ck_assert(!counts.on_caller_thread);
	stop_daemon();
	ck_assert_int_eq(counts.total, COUNT + 1); /* nothing more after close */
}
END_TEST

START_TEST(test_a_bad_notify_or_argument_starts_nothing)
{
	start_daemon_with(NULL);
	weft_notify none = {0};
	weft_call *call = NULL;
	assert_weft(weft_ping_async(client, &none, &call), WEFT_EINVAL);
	assert_weft(weft_ping_async(client, NULL, &call), WEFT_EINVAL);
	weft_notify notify = {.callback = count_call};
	assert_weft(weft_status_async(client, 0, &notify, &call), WEFT_EINVAL);
	assert_weft(weft_result_many_async(client, NULL, 0, 1, &notify, &call), WEFT_EINVAL);
	ck_assert_ptr_null(call);
	ck_assert_int_eq(counts.total, 0);
	stop_daemon();
}
END_TEST

/* ----------------------------------------------------------------- cancel */

/* The job's state now, by name (a static buffer). */
static const char *state_now(uint64_t id)
{
	static char name[32];
	json_t *job = NULL;
	assert_weft(weft_status(client, id, &job), WEFT_OK);
	snprintf(name, sizeof(name), "%s", json_string_value(json_object_get(job, "state")));
	json_decref(job);
	return name;
}

START_TEST(test_cancelling_a_call_in_flight_completes_it_once_with_ecanceled)
{
	start_daemon_with(NULL);
	weft_job_spec *spec = sleep_spec(30);
	uint64_t id = 0;
	assert_weft(weft_submit(client, spec, &id), WEFT_OK);
	weft_job_spec_free(spec);
	/* Running before anything else, so that "not touched" below means
	 * "still running" (a loaded machine may start it late; 20 s hang guard). */
	double deadline = fixture_now() + 20;
	while (strcmp(state_now(id), "running") != 0)
		ck_assert_msg(fixture_now() < deadline, "the job never started");
	weft_completion_queue *queue = NULL;
	assert_weft(weft_completion_queue_new(&queue), WEFT_OK);
	weft_notify notify = {.queue = queue};
	weft_call *call = NULL;
	assert_weft(weft_result_async(client, id, -1, &notify, &call), WEFT_OK);
	assert_weft(weft_call_cancel(call), WEFT_OK);
	assert_weft(weft_call_cancel(call), WEFT_EALREADYSET);
	weft_call *done = NULL;
	assert_weft(weft_completion_queue_wait(queue, -1, &done), WEFT_OK);
	ck_assert_ptr_eq(done, call);
	assert_weft(weft_call_error(done), WEFT_ECANCELED);
	ck_assert_ptr_null(weft_call_outcome(done));
	assert_weft(weft_call_cancel(done), WEFT_EALREADYSET);
	weft_call_free(done);
	/* Once, and only once: nothing else arrives. */
	assert_weft(weft_completion_queue_wait(queue, 0, &done), WEFT_ETIMEOUT);
	/* The client goes on working, and the job was not touched. */
	json_t *job = NULL;
	assert_weft(weft_status(client, id, &job), WEFT_OK);
	ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "running");
	json_decref(job);
	assert_weft(weft_cancel_async(client, id, &notify, &call), WEFT_OK);
	assert_weft(weft_completion_queue_wait(queue, -1, &done), WEFT_OK);
	bool cancelled = false;
	weft_state state = WEFT_STATE_UNKNOWN;
	assert_weft(weft_call_cancel_outcome(done, &cancelled, &state), WEFT_OK);
	ck_assert(cancelled);
	ck_assert_int_eq(state, WEFT_STATE_CANCELLED);
	weft_call_free(done);
	stop_daemon();
	weft_completion_queue_free(queue);
}
END_TEST

/* ----------------------------------------------------------------- close */

START_TEST(test_close_ends_every_outstanding_call_once_with_eclosed)
{
	start_daemon_with(NULL);
	weft_job_spec *spec = sleep_spec(30);
	uint64_t id = 0;
	assert_weft(weft_submit(client, spec, &id), WEFT_OK);
	weft_job_spec_free(spec);
	weft_completion_queue *queue = NULL;
	assert_weft(weft_completion_queue_new(&queue), WEFT_OK);
	weft_notify by_queue = {.queue = queue};
	weft_notify by_callback = {.callback = count_call};
	enum { COUNT = 50 };
	for (int i = 0; i < COUNT; i++) {
		assert_weft(weft_result_async(client, id, -1, &by_queue, NULL), WEFT_OK);
		assert_weft(weft_wait_async(client, &id, 1, -1, WEFT_ALL_COMPLETED, &by_callback,
		                            NULL),
		            WEFT_OK);
	}
	weft_close(client); /* returns once every callback has returned */
	client = NULL;
	ck_assert_int_eq(counts.total, COUNT);
	ck_assert_int_eq(counts.calls[2], COUNT);
	for (int i = 0; i < COUNT; i++) {
		weft_call *call = NULL;
		assert_weft(weft_completion_queue_next(queue, &call), WEFT_OK);
		ck_assert_ptr_nonnull(call);
		assert_weft(weft_call_error(call), WEFT_ECLOSED);
		weft_call_free(call);
	}
	weft_call *extra = NULL;
	assert_weft(weft_completion_queue_next(queue, &extra), WEFT_OK);
	ck_assert_ptr_null(extra);
	weft_completion_queue_free(queue);
	fixture_stop(&weftd);
}
END_TEST

/* ------------------------------------------------------------ batch result */

START_TEST(test_a_batch_result_larger_than_max_message_is_split)
{
	static const char *const small[] = {"--max-message", "4096", NULL};
	start_daemon_with(small);
	ck_assert_uint_eq(weft_client_max_message(client), 4096);
	enum { COUNT = 2000 }; /* about 6 requests' worth of ids */
	static uint64_t ids[COUNT + 1];
	static weft_job_spec *specs[100];
	for (int batch = 0; batch < COUNT / 100; batch++) {
		for (int i = 0; i < 100; i++)
			specs[i] = echo_spec(batch * 100 + i);
		assert_weft(weft_submit_batch(client, (const weft_job_spec *const *)specs, 100,
		                              ids + batch * 100),
		            WEFT_OK);
		for (int i = 0; i < 100; i++)
			weft_job_spec_free(specs[i]);
	}
	ids[COUNT] = ids[7]; /* a repeat counts once */
	weft_outcome **outcomes = NULL;
	size_t count = 0;
	assert_weft(weft_result_many(client, ids, COUNT + 1, -1, &outcomes, &count), WEFT_OK);
	ck_assert_uint_eq(count, COUNT);
	for (size_t i = 0; i < count; i++) {
		ck_assert_uint_eq(outcomes[i]->id, ids[i]);
		ck_assert_int_eq(outcomes[i]->state, WEFT_STATE_DONE);
		ck_assert_int_eq(json_integer_value(outcomes[i]->result), (json_int_t)i);
	}
	weft_outcomes_free(outcomes, count);
	stop_daemon();
}
END_TEST

/* ---------------------------------------------------- allocation failures */

static atomic_long allocations_until_failure = -1; /* -1: never fail */
static atomic_long allocations_live;

static void *failing_malloc(size_t size)
{
	long left = atomic_load(&allocations_until_failure);
	if (left == 0)
		return NULL;
	if (left > 0)
		atomic_fetch_sub(&allocations_until_failure, 1);
	void *memory = malloc(size + 16);
	if (memory == NULL)
		return NULL;
	atomic_fetch_add(&allocations_live, 1);
	return (char *)memory + 16;
}

static void failing_free(void *pointer)
{
	if (pointer == NULL)
		return;
	atomic_fetch_sub(&allocations_live, 1);
	free((char *)pointer - 16);
}

START_TEST(test_every_allocation_failure_of_an_async_call_is_enomem_without_leaks)
{
	/* Everything the test makes goes through the counting allocator. */
	weft_set_alloc_funcs(failing_malloc, failing_free);
	json_set_alloc_funcs(failing_malloc, failing_free);
	start_daemon_with(NULL);
	uint64_t ids[3];
	weft_job_spec *spec = echo_spec(1);
	for (int i = 0; i < 3; i++)
		assert_weft(weft_submit(client, spec, &ids[i]), WEFT_OK);
	weft_completion_queue *queue = NULL;
	assert_weft(weft_completion_queue_new(&queue), WEFT_OK);
	weft_notify notify = {.queue = queue};
	long fail_at;
	for (fail_at = 0;; fail_at++) {
		atomic_store(&allocations_until_failure, fail_at);
		int rv = weft_result_many_async(client, ids, 3, -1, &notify, NULL);
		int call_rv = rv;
		if (rv == WEFT_OK) {
			weft_call *call = NULL;
			assert_weft(weft_completion_queue_wait(queue, -1, &call), WEFT_OK);
			call_rv = weft_call_error(call);
			if (call_rv == WEFT_OK) {
				size_t count = 0;
				ck_assert_ptr_nonnull(weft_call_outcomes(call, &count));
				ck_assert_uint_eq(count, 3);
			}
			weft_call_free(call);
		}
		ck_assert_msg(call_rv == WEFT_OK || call_rv == WEFT_ENOMEM, "allocation %ld: %s",
		              fail_at, weft_error_code(call_rv));
		bool none_failed = atomic_load(&allocations_until_failure) > 0;
		atomic_store(&allocations_until_failure, -1);
		if (none_failed) {
			ck_assert_int_eq(call_rv, WEFT_OK);
			break;
		}
		ck_assert_msg(fail_at < 1000, "no end to the allocations");
	}
	weft_job_spec_free(spec);
	stop_daemon();
	weft_completion_queue_free(queue);
	ck_assert_msg(allocations_live == 0, "%ld blocks leaked", (long)allocations_live);
	json_set_alloc_funcs(malloc, free);
	weft_set_alloc_funcs(NULL, NULL);
	fprintf(stderr, "async allocation failures: %ld points each reported as no_memory\n",
	        fail_at);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("client_async");
	TCase *cases = tcase_create("async");
	tcase_set_timeout(cases, 60);
	tcase_add_test(cases, test_a_thousand_submit_waits_in_flight_from_one_thread_by_fd);
	tcase_add_test(cases, test_callbacks_run_on_nng_threads_once_each);
	tcase_add_test(cases, test_a_bad_notify_or_argument_starts_nothing);
	tcase_add_test(cases, test_cancelling_a_call_in_flight_completes_it_once_with_ecanceled);
	tcase_add_test(cases, test_close_ends_every_outstanding_call_once_with_eclosed);
	tcase_add_test(cases, test_a_batch_result_larger_than_max_message_is_split);
	tcase_add_test(cases, test_every_allocation_failure_of_an_async_call_is_enomem_without_leaks);
	suite_add_tcase(suite, cases);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
