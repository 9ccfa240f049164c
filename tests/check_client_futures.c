/*
 * Bare futures, as_completed and the scheduling fields through libweft
 * against a real weftd (tests/fixture.h): future.new/future.set, a waiter
 * woken by another client's set, already_set and the other refusals,
 * as_completed's order and timeout, and jobs that wait (after, delay),
 * retry and meet their deadline.
 */
#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/fixture.h"
#include "tests/weft_assert.h"
#include "weft/weft.h"

static fixture weftd;
static weft_client *client;

static void start_daemon(void)
{
	fixture_start(&weftd, NULL);
	assert_weft(weft_connect(weftd.url, &client), WEFT_OK);
}

static void stop_daemon(void)
{
	weft_close(client);
	client = NULL;
	fixture_stop(&weftd);
}

/* A spec for fn with args (stolen, may be NULL). */
static weft_job_spec *spec_of(const char *fn, json_t *args)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new(fn, &spec), WEFT_OK);
	if (args != NULL)
		assert_weft(weft_job_spec_set_args(spec, args), WEFT_OK);
	json_decref(args);
	return spec;
}

/* Submits spec and frees it; the new id. */
static uint64_t submit_spec(weft_job_spec *spec)
{
	uint64_t id = 0;
	assert_weft(weft_submit(client, spec, &id), WEFT_OK);
	weft_job_spec_free(spec);
	ck_assert_uint_gt(id, 0);
	return id;
}

static uint64_t submit_sleep(double seconds)
{
	return submit_spec(spec_of("sleep", json_pack("{s:f}", "seconds", seconds)));
}

static weft_outcome *result_of(uint64_t id, double timeout)
{
	weft_outcome *outcome = NULL;
	assert_weft(weft_result(client, id, timeout, &outcome), WEFT_OK);
	ck_assert_uint_eq(outcome->id, id);
	return outcome;
}

/* The job's state as status reports it. */
static const char *state_of(uint64_t id, char *buffer, size_t size)
{
	json_t *job = NULL;
	assert_weft(weft_status(client, id, &job), WEFT_OK);
	snprintf(buffer, size, "%s", json_string_value(json_object_get(job, "state")));
	json_decref(job);
	return buffer;
}

static double unix_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ futures */

START_TEST(test_a_future_is_set_once_with_a_result)
{
	json_t *labels = json_pack("{s:s}", "who", "me");
	uint64_t id = 0;
	assert_weft(weft_future_new(client, labels, &id), WEFT_OK);
	json_t *job = NULL;
	assert_weft(weft_status(client, id, &job), WEFT_OK);
	ck_assert_str_eq(json_string_value(json_object_get(job, "fn")), "future");
	ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "pending");
	ck_assert(json_equal(json_object_get(job, "labels"), labels));
	json_decref(job);
	json_decref(labels);

	json_t *value = json_pack("{s:[i,i]}", "answer", 6, 66);
	assert_weft(weft_future_set_result(client, id, value), WEFT_OK);
	weft_outcome *outcome = result_of(id, 0);
	ck_assert_int_eq(outcome->state, WEFT_STATE_DONE);
	ck_assert(json_equal(outcome->result, value));
	weft_outcome_free(outcome);

	assert_weft(weft_future_set_result(client, id, value), WEFT_EALREADYSET);
	ck_assert_uint_eq(weft_last_error()->id, id);
	ck_assert_str_eq(weft_last_error()->state, "done");
	assert_weft(weft_future_set_error(client, id, "ValueError", "late"), WEFT_EALREADYSET);
	json_decref(value);
}
END_TEST

START_TEST(test_a_future_set_with_an_error_fails)
{
	uint64_t id = 0;
	assert_weft(weft_future_new(client, NULL, &id), WEFT_OK);
	assert_weft(weft_future_set_error(client, id, "ValueError", "no such user"), WEFT_OK);
	weft_outcome *outcome = result_of(id, 0);
	ck_assert_int_eq(outcome->state, WEFT_STATE_FAILED);
	ck_assert_str_eq(outcome->error_type, "ValueError");
	ck_assert_str_eq(outcome->error_message, "no such user");
	weft_outcome_free(outcome);
	json_t *value = json_integer(1);
	assert_weft(weft_future_set_result(client, id, value), WEFT_EALREADYSET);
	ck_assert_str_eq(weft_last_error()->state, "failed");

	/* A cancelled future cannot be set either. */
	assert_weft(weft_future_new(client, NULL, &id), WEFT_OK);
	assert_weft(weft_cancel(client, id, NULL, NULL), WEFT_OK);
	assert_weft(weft_future_set_result(client, id, value), WEFT_EALREADYSET);
	ck_assert_str_eq(weft_last_error()->state, "cancelled");
	json_decref(value);
}
END_TEST

START_TEST(test_only_futures_can_be_set)
{
	json_t *value = json_integer(1);
	assert_weft(weft_future_set_result(client, 999999, value), WEFT_EUNKNOWNID);
	ck_assert_uint_eq(weft_last_error()->id, 999999);
	uint64_t job = submit_spec(spec_of("echo", json_pack("{s:i}", "value", 1)));
	assert_weft(weft_future_set_result(client, job, value), WEFT_EBADFIELD);
	json_decref(value);
	/* submit cannot make one */
	weft_job_spec *spec = spec_of("future", NULL);
	uint64_t id = 0;
	ck_assert_int_ne(weft_submit(client, spec, &id), WEFT_OK);
	weft_job_spec_free(spec);
}
END_TEST

typedef struct waiter {
	const char *url;
	uint64_t id;
	weft_outcome *outcome; /* written by the thread */
	int error;
} waiter;

static void *wait_for_the_future(void *argument)
{
	waiter *self = argument;
	weft_client *own = NULL;
	self->error = weft_connect(self->url, &own);
	if (self->error == WEFT_OK)
		self->error = weft_result(own, self->id, 10, &self->outcome);
	weft_close(own);
	return NULL;
}

/* The daemon's count of open long polls. */
static long long open_waiters(void)
{
	json_t *stats = NULL;
	assert_weft(weft_stats(client, &stats), WEFT_OK);
	long long count = json_integer_value(json_object_get(stats, "waiters"));
	json_decref(stats);
	return count;
}

START_TEST(test_a_waiter_gets_the_value_another_client_sets)
{
	uint64_t id = 0;
	assert_weft(weft_future_new(client, NULL, &id), WEFT_OK);
	waiter other = {.url = weftd.url, .id = id};
	pthread_t thread;
	ck_assert_int_eq(pthread_create(&thread, NULL, wait_for_the_future, &other), 0);
	/* Set it only once the other client's result is really waiting. */
	double give_up = fixture_now() + 5;
	while (open_waiters() < 1 && fixture_now() < give_up)
		nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
	ck_assert_int_ge(open_waiters(), 1);
	double set_at = fixture_now();
	json_t *value = json_string("666");
	assert_weft(weft_future_set_result(client, id, value), WEFT_OK);
	json_decref(value);
	ck_assert_int_eq(pthread_join(thread, NULL), 0);
	double woken_after = fixture_now() - set_at;
	ck_assert_int_eq(other.error, WEFT_OK);
	ck_assert_int_eq(other.outcome->state, WEFT_STATE_DONE);
	ck_assert_str_eq(json_string_value(other.outcome->result), "666");
	ck_assert_msg(woken_after < 1, "the waiter took %.3f s", woken_after);
	weft_outcome_free(other.outcome);
}
END_TEST

/* --------------------------------------------------------- as_completed */

START_TEST(test_as_completed_yields_in_finishing_order)
{
	uint64_t ids[3] = {submit_sleep(0.3), submit_sleep(0.1), submit_sleep(0.2)};
	weft_as_completed *iterator = NULL;
	assert_weft(weft_as_completed_new(client, ids, 3, 10, &iterator), WEFT_OK);
	uint64_t order[3] = {0};
	for (int i = 0; i < 3; i++)
		assert_weft(weft_as_completed_next(iterator, &order[i]), WEFT_OK);
	ck_assert_uint_eq(order[0], ids[1]);
	ck_assert_uint_eq(order[1], ids[2]);
	ck_assert_uint_eq(order[2], ids[0]);
	uint64_t end = 1;
	assert_weft(weft_as_completed_next(iterator, &end), WEFT_OK);
	ck_assert_uint_eq(end, 0);
	weft_as_completed_free(iterator);
}
END_TEST

START_TEST(test_as_completed_times_out)
{
	uint64_t ids[2] = {submit_sleep(0), submit_sleep(30)};
	weft_as_completed *iterator = NULL;
	double started = fixture_now();
	assert_weft(weft_as_completed_new(client, ids, 2, 0.3, &iterator), WEFT_OK);
	uint64_t id = 0;
	assert_weft(weft_as_completed_next(iterator, &id), WEFT_OK);
	ck_assert_uint_eq(id, ids[0]);
	assert_weft(weft_as_completed_next(iterator, &id), WEFT_ETIMEOUT);
	double waited = fixture_now() - started;
	ck_assert_msg(waited >= 0.29 && waited < 2, "waited %.3f s", waited);
	weft_as_completed_free(iterator);
	/* An unknown id is the daemon's unknown_id. */
	uint64_t unknown[2] = {ids[1], 999999};
	assert_weft(weft_as_completed_new(client, unknown, 2, 1, &iterator), WEFT_OK);
	assert_weft(weft_as_completed_next(iterator, &id), WEFT_EUNKNOWNID);
	weft_as_completed_free(iterator);
	assert_weft(weft_cancel(client, ids[1], NULL, NULL), WEFT_OK);
}
END_TEST

/* ------------------------------------------------------------ scheduling */

START_TEST(test_a_job_after_a_future_waits_for_it)
{
	char state[16];
	uint64_t future = 0;
	assert_weft(weft_future_new(client, NULL, &future), WEFT_OK);
	weft_job_spec *spec = spec_of("echo", json_pack("{s:s}", "value", "ran"));
	assert_weft(weft_job_spec_add_after(spec, future), WEFT_OK);
	uint64_t job = submit_spec(spec);
	ck_assert_str_eq(state_of(job, state, sizeof(state)), "waiting");
	assert_weft(weft_result(client, job, 0.05, &(weft_outcome *){NULL}), WEFT_ETIMEOUT);
	ck_assert_str_eq(weft_last_error()->state, "waiting");
	json_t *value = json_true();
	assert_weft(weft_future_set_result(client, future, value), WEFT_OK);
	weft_outcome *outcome = result_of(job, 5);
	ck_assert_int_eq(outcome->state, WEFT_STATE_DONE);
	ck_assert_str_eq(json_string_value(outcome->result), "ran");
	weft_outcome_free(outcome);
	json_decref(value);
}
END_TEST

START_TEST(test_a_failed_dependency_fails_the_job_unless_always)
{
	uint64_t first = submit_sleep(0.1);
	uint64_t future = 0;
	assert_weft(weft_future_new(client, NULL, &future), WEFT_OK);
	weft_job_spec *strict = spec_of("echo", json_pack("{s:i}", "value", 1));
	assert_weft(weft_job_spec_add_after(strict, first), WEFT_OK);
	assert_weft(weft_job_spec_add_after(strict, future), WEFT_OK);
	weft_job_spec *always = spec_of("echo", json_pack("{s:i}", "value", 2));
	assert_weft(weft_job_spec_add_after(always, future), WEFT_OK);
	assert_weft(weft_job_spec_set_after_always(always, true), WEFT_OK);
	const weft_job_spec *specs[] = {strict, always};
	uint64_t ids[2] = {0, 0};
	assert_weft(weft_submit_batch(client, specs, 2, ids), WEFT_OK);
	weft_job_spec_free(strict);
	weft_job_spec_free(always);
	assert_weft(weft_future_set_error(client, future, "ValueError", "no"), WEFT_OK);
	weft_outcome *outcome = result_of(ids[0], 5);
	ck_assert_int_eq(outcome->state, WEFT_STATE_FAILED);
	ck_assert_str_eq(outcome->error_type, "DependencyFailed");
	weft_outcome_free(outcome);
	outcome = result_of(ids[1], 5);
	ck_assert_int_eq(outcome->state, WEFT_STATE_DONE);
	ck_assert_int_eq(json_integer_value(outcome->result), 2);
	weft_outcome_free(outcome);
	/* An id the daemon does not know is refused at submit. */
	weft_job_spec *spec = spec_of("echo", json_pack("{s:i}", "value", 1));
	assert_weft(weft_job_spec_add_after(spec, 999999), WEFT_OK);
	uint64_t id = 0;
	assert_weft(weft_submit(client, spec, &id), WEFT_EUNKNOWNID);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_a_delayed_job_starts_after_its_delay)
{
	weft_job_spec *spec = spec_of("echo", json_pack("{s:i}", "value", 1));
	assert_weft(weft_job_spec_set_delay(spec, 0.2), WEFT_OK);
	uint64_t id = submit_spec(spec);
	weft_outcome *outcome = result_of(id, 5);
	ck_assert_int_eq(outcome->state, WEFT_STATE_DONE);
	weft_outcome_free(outcome);
	json_t *job = NULL;
	assert_weft(weft_status(client, id, &job), WEFT_OK);
	double created = json_number_value(json_object_get(job, "created"));
	double started = json_number_value(json_object_get(job, "started"));
	ck_assert_msg(started - created >= 0.19, "started %.3f s after it was made",
	              started - created);
	ck_assert(json_is_number(json_object_get(job, "run_at")));
	json_decref(job);
}
END_TEST

/* The attempts a finished job made, from its status. */
static size_t attempts_of(uint64_t id)
{
	json_t *job = NULL;
	assert_weft(weft_status(client, id, &job), WEFT_OK);
	size_t count = json_array_size(json_object_get(job, "attempts"));
	json_decref(job);
	return count;
}

START_TEST(test_a_failing_job_is_retried)
{
	/* A sleep with a timeout fails every attempt with Timeout. */
	weft_job_spec *spec = spec_of("sleep", json_pack("{s:i}", "seconds", 5));
	assert_weft(weft_job_spec_set_timeout(spec, 0.05), WEFT_OK);
	assert_weft(weft_job_spec_set_retries(spec, 2, 0.05, 0.1), WEFT_OK);
	uint64_t retried = submit_spec(spec);
	spec = spec_of("sleep", json_pack("{s:i}", "seconds", 5));
	assert_weft(weft_job_spec_set_timeout(spec, 0.05), WEFT_OK);
	assert_weft(weft_job_spec_set_retries(spec, 2, 0.05, 0.1), WEFT_OK);
	assert_weft(weft_job_spec_add_retry_on(spec, "ValueError"), WEFT_OK);
	uint64_t not_retried = submit_spec(spec);

	weft_outcome *outcome = result_of(retried, 10);
	ck_assert_int_eq(outcome->state, WEFT_STATE_FAILED);
	ck_assert_str_eq(outcome->error_type, "Timeout");
	weft_outcome_free(outcome);
	ck_assert_uint_eq(attempts_of(retried), 3);
	outcome = result_of(not_retried, 10);
	ck_assert_int_eq(outcome->state, WEFT_STATE_FAILED);
	weft_outcome_free(outcome);
	ck_assert_uint_eq(attempts_of(not_retried), 1);
}
END_TEST

START_TEST(test_a_job_past_its_deadline_fails)
{
	weft_job_spec *spec = spec_of("sleep", json_pack("{s:i}", "seconds", 30));
	assert_weft(weft_job_spec_set_deadline(spec, unix_now() + 0.2), WEFT_OK);
	uint64_t id = submit_spec(spec);
	weft_outcome *outcome = result_of(id, 5);
	ck_assert_int_eq(outcome->state, WEFT_STATE_FAILED);
	ck_assert_str_eq(outcome->error_type, "Deadline");
	weft_outcome_free(outcome);
}
END_TEST

/* ------------------------------------------------------------ the CLI */

/* Runs $WEFT_CLI --url <the daemon> with args (NULL-terminated); its stdout
 * goes to out (NUL-terminated), its stderr to this test's. Returns its exit
 * code. fork is followed at once by exec: nng's threads are not needed in
 * the child. */
static int run_cli(char *out, size_t size, ...)
{
	const char *cli = getenv("WEFT_CLI");
	ck_assert_msg(cli != NULL && cli[0] == '/', "set WEFT_CLI (make check does)");
	char *argv[24] = {(char *)"weft", (char *)"--url", weftd.url};
	size_t argc = 3;
	va_list words;
	va_start(words, size);
	for (char *word; (word = va_arg(words, char *)) != NULL;) {
		ck_assert(argc < 23);
		argv[argc++] = word;
	}
	va_end(words);
	argv[argc] = NULL;
	int pipe_ends[2];
	ck_assert_int_eq(pipe(pipe_ends), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pipe_ends[1], STDOUT_FILENO);
		close(pipe_ends[0]);
		close(pipe_ends[1]);
		execv(cli, argv);
		_exit(127);
	}
	close(pipe_ends[1]);
	size_t used = 0;
	ssize_t got;
	while (used + 1 < size && (got = read(pipe_ends[0], out + used, size - 1 - used)) > 0)
		used += (size_t)got;
	out[used] = '\0';
	close(pipe_ends[0]);
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(test_the_cli_makes_and_sets_futures_and_schedules_jobs)
{
	char future[64], out[4096];
	ck_assert_int_eq(run_cli(future, sizeof(future), "future", "new", "--label", "who=me", NULL),
	                 0);
	future[strcspn(future, "\n")] = '\0';
	ck_assert_msg(strtoull(future, NULL, 10) > 0, "future new printed '%s'", future);
	char job[64];
	ck_assert_int_eq(run_cli(job, sizeof(job), "call", "echo", "{\"value\": 7}", "--after",
	                         future, "--retries", "1", "--retry-on", "Timeout", NULL),
	                 0);
	job[strcspn(job, "\n")] = '\0';
	uint64_t job_id = strtoull(job, NULL, 10);
	char state[16];
	ck_assert_str_eq(state_of(job_id, state, sizeof(state)), "waiting");
	/* as_completed gives up at --timeout with exit code 4 */
	ck_assert_int_eq(run_cli(out, sizeof(out), "wait", "--as-completed", future, job,
	                         "--timeout", "0.1", NULL),
	                 4);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(run_cli(out, sizeof(out), "future", "set", future, "\"yes\"", NULL), 0);
	ck_assert_int_eq(run_cli(out, sizeof(out), "wait", "--as-completed", job, future, NULL), 0);
	char expected[160];
	snprintf(expected, sizeof(expected), "%s\n%s\n", future, job);
	ck_assert_str_eq(out, expected);
	ck_assert_int_eq(run_cli(out, sizeof(out), "result", job, NULL), 0);
	ck_assert_str_eq(out, "7\n");
	/* set once; fail sets an error */
	ck_assert_int_eq(run_cli(out, sizeof(out), "future", "set", future, "1", NULL), 5);
	char other[64];
	ck_assert_int_eq(run_cli(other, sizeof(other), "future", "new", NULL), 0);
	other[strcspn(other, "\n")] = '\0';
	ck_assert_int_eq(run_cli(out, sizeof(out), "future", "fail", other, "ValueError", "bad",
	                         NULL),
	                 0);
	ck_assert_int_eq(run_cli(out, sizeof(out), "result", other, NULL), 1);
	/* usage errors: nothing sent */
	ck_assert_int_eq(run_cli(out, sizeof(out), "future", "set", other, "{oops", NULL), 2);
	ck_assert_int_eq(run_cli(out, sizeof(out), "call", "echo", "--delay", "1", "--at", "5",
	                         NULL),
	                 2);
	ck_assert_int_eq(run_cli(out, sizeof(out), "call", "echo", "--retry-on", "X", NULL), 2);
	ck_assert_int_eq(run_cli(out, sizeof(out), "submit", "--retries", "101", "--", "true",
	                         NULL),
	                 2);
	ck_assert_int_eq(run_cli(out, sizeof(out), "run", "--after", "0", "--", "true", NULL), 2);
	ck_assert_int_eq(run_cli(out, sizeof(out), "future", "--help", NULL), 0);
	ck_assert_int_eq(run_cli(out, sizeof(out), "future", "fail", "--help", NULL), 0);
	ck_assert_msg(strstr(out, "usage: weft future fail") != NULL, "help: %s", out);
	/* weft run with a delay waits for it and exits with the command's status */
	ck_assert_int_eq(run_cli(out, sizeof(out), "run", "--delay", "0.1", "--", "sh", "-c",
	                         "exit 3", NULL),
	                 3);
}
END_TEST

START_TEST(test_queues_through_libweft_and_the_cli)
{
	assert_weft(weft_queue_set(client, "builds", 1), WEFT_OK);
	assert_weft(weft_queue_pause(client, "builds", true), WEFT_OK);
	weft_job_spec *spec = spec_of("echo", json_pack("{s:s}", "value", "ran"));
	assert_weft(weft_job_spec_set_queue(spec, "builds"), WEFT_OK);
	assert_weft(weft_job_spec_set_priority(spec, 7), WEFT_OK);
	uint64_t id = submit_spec(spec);
	char state[16];
	ck_assert_str_eq(state_of(id, state, sizeof(state)), "queued");
	json_t *queues = NULL;
	assert_weft(weft_queues(client, &queues), WEFT_OK);
	json_t *builds = json_array_get(queues, 0);
	ck_assert_str_eq(json_string_value(json_object_get(builds, "name")), "builds");
	ck_assert(json_is_true(json_object_get(builds, "paused")));
	ck_assert_int_eq(json_integer_value(json_object_get(builds, "queued")), 1);
	json_decref(queues);
	char out[4096];
	ck_assert_int_eq(run_cli(out, sizeof(out), "queue", "resume", "builds", NULL), 0);
	ck_assert_str_eq(out, "builds resumed\n");
	weft_outcome *outcome = result_of(id, 10);
	ck_assert_str_eq(json_string_value(outcome->result), "ran");
	weft_outcome_free(outcome);
	ck_assert_int_eq(run_cli(out, sizeof(out), "queue", "ls", NULL), 0);
	ck_assert_msg(strstr(out, "builds") != NULL, "queue ls: %s", out);
	/* Errors: unknown queue (daemon), bad names and limits (locally). */
	ck_assert_int_eq(run_cli(out, sizeof(out), "queue", "pause", "nosuch", NULL), 5);
	ck_assert_int_eq(run_cli(out, sizeof(out), "queue", "set", "x", "--max", "0", NULL), 2);
	ck_assert_int_eq(run_cli(out, sizeof(out), "call", "echo", "{\"value\":1}", "--queue",
	                         "nosuch", NULL),
	                 5);
	assert_weft(weft_queue_set(client, "", 1), WEFT_EINVAL);
	spec = spec_of("echo", NULL);
	assert_weft(weft_job_spec_set_priority(spec, 1001), WEFT_EINVAL);
	weft_job_spec_free(spec);
}
END_TEST

static Suite *futures_suite(void)
{
	Suite *suite = suite_create("client_futures");
	TCase *futures = tcase_create("futures");
	tcase_add_checked_fixture(futures, start_daemon, stop_daemon);
	tcase_set_timeout(futures, 20);
	tcase_add_test(futures, test_a_future_is_set_once_with_a_result);
	tcase_add_test(futures, test_a_future_set_with_an_error_fails);
	tcase_add_test(futures, test_only_futures_can_be_set);
	tcase_add_test(futures, test_a_waiter_gets_the_value_another_client_sets);
	suite_add_tcase(suite, futures);
	TCase *as_completed = tcase_create("as_completed");
	tcase_add_checked_fixture(as_completed, start_daemon, stop_daemon);
	tcase_set_timeout(as_completed, 20);
	tcase_add_test(as_completed, test_as_completed_yields_in_finishing_order);
	tcase_add_test(as_completed, test_as_completed_times_out);
	suite_add_tcase(suite, as_completed);
	TCase *scheduling = tcase_create("scheduling");
	tcase_add_checked_fixture(scheduling, start_daemon, stop_daemon);
	tcase_set_timeout(scheduling, 20);
	tcase_add_test(scheduling, test_a_job_after_a_future_waits_for_it);
	tcase_add_test(scheduling, test_a_failed_dependency_fails_the_job_unless_always);
	tcase_add_test(scheduling, test_a_delayed_job_starts_after_its_delay);
	tcase_add_test(scheduling, test_a_failing_job_is_retried);
	tcase_add_test(scheduling, test_a_job_past_its_deadline_fails);
	tcase_add_test(scheduling, test_the_cli_makes_and_sets_futures_and_schedules_jobs);
	tcase_add_test(scheduling, test_queues_through_libweft_and_the_cli);
	suite_add_tcase(suite, scheduling);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(futures_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
