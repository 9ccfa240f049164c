/* The job table: state machine, watchers, retention, listing, concurrency. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>

#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/base/now.h"
#include "tests/stand_ins.h"

static const struct function *echo(void)
{
	return functions_find("echo");
}

static struct job *make(struct jobs *jobs, const char *label)
{
	json_t *labels = label != NULL ? json_pack("{s:s}", "team", label) : NULL;
	return jobs_create(jobs, echo(), json_pack("{s:i}", "value", 1), labels, 0, NULL, NULL);
}

static json_t *error_of(const char *type)
{
	return json_pack("{s:s, s:s}", "type", type, "message", "test");
}

START_TEST(test_new_job_is_queued_and_findable)
{
	struct jobs *jobs = jobs_new(3600, 100);
	struct job *first = make(jobs, NULL);
	struct job *second = make(jobs, NULL);
	ck_assert_uint_gt(second->id, first->id);
	struct job *found = jobs_find(jobs, first->id);
	ck_assert_ptr_eq(found, first);
	struct job_snapshot snapshot;
	jobs_snapshot(jobs, found, &snapshot);
	ck_assert_int_eq(snapshot.state, JOB_QUEUED);
	jobs_snapshot_clear(&snapshot);
	ck_assert_ptr_null(jobs_find(jobs, 999999));
	ck_assert_ptr_null(jobs_find(jobs, 0));
	job_unref(found);
	job_unref(first);
	job_unref(second);
	jobs_free(jobs);
}
END_TEST

START_TEST(test_first_finish_wins)
{
	struct jobs *jobs = jobs_new(3600, 100);
	struct job *job = make(jobs, NULL);
	ck_assert(jobs_start(jobs, job, 1, NULL));
	ck_assert(!jobs_start(jobs, job, 1, NULL));
	enum job_state previous;
	struct job_attempt *attempt = (struct job_attempt *)1;
	ck_assert(jobs_finish(jobs, job, JOB_DONE, json_integer(5), NULL, &previous, &attempt));
	ck_assert_int_eq(previous, JOB_RUNNING);
	ck_assert_ptr_null(attempt); /* started without one */
	/* The loser's values are dropped (ASan would report a leak otherwise). */
	ck_assert(!jobs_finish(jobs, job, JOB_CANCELLED, NULL, error_of("Cancelled"), &previous,
	                       NULL));
	ck_assert_int_eq(previous, JOB_DONE);
	struct job_snapshot snapshot;
	jobs_snapshot(jobs, job, &snapshot);
	ck_assert_int_eq(snapshot.state, JOB_DONE);
	ck_assert_int_eq(json_integer_value(snapshot.result), 5);
	jobs_snapshot_clear(&snapshot);
	job_unref(job);
	jobs_free(jobs);
}
END_TEST

START_TEST(test_cancelled_while_queued_never_starts)
{
	struct jobs *jobs = jobs_new(3600, 100);
	struct job *job = make(jobs, NULL);
	ck_assert(jobs_finish(jobs, job, JOB_CANCELLED, NULL, error_of("Cancelled"), NULL, NULL));
	ck_assert(!jobs_start(jobs, job, 0, NULL));
	job_unref(job);
	jobs_free(jobs);
}
END_TEST

struct recorder {
	struct job_watch watch;
	struct jobs *jobs;
	int calls;
	enum job_state seen;
};

static void record(struct job_watch *watch, struct job *job)
{
	struct recorder *recorder = (struct recorder *)watch;
	recorder->calls++;
	/* No lock may be held here: taking the job's lock again must not deadlock. */
	struct job_snapshot snapshot;
	jobs_snapshot(recorder->jobs, job, &snapshot);
	recorder->seen = snapshot.state;
	jobs_snapshot_clear(&snapshot);
}

START_TEST(test_watchers_are_notified_once_without_locks)
{
	struct jobs *jobs = jobs_new(3600, 100);
	struct job *job = make(jobs, NULL);
	struct recorder first = {.watch.notify = record, .jobs = jobs};
	struct recorder second = {.watch.notify = record, .jobs = jobs};
	struct recorder removed = {.watch.notify = record, .jobs = jobs};
	ck_assert(jobs_watch(jobs, job, &first.watch));
	ck_assert(jobs_watch(jobs, job, &removed.watch));
	ck_assert(jobs_watch(jobs, job, &second.watch));
	ck_assert(jobs_unwatch(jobs, job, &removed.watch));
	jobs_finish(jobs, job, JOB_FAILED, NULL, error_of("ValueError"), NULL, NULL);
	jobs_finish(jobs, job, JOB_DONE, json_null(), NULL, NULL, NULL);
	ck_assert_int_eq(first.calls, 1);
	ck_assert_int_eq(second.calls, 1);
	ck_assert_int_eq(removed.calls, 0);
	ck_assert_int_eq(first.seen, JOB_FAILED);
	/* After the finish, watching and unwatching both say "already finished". */
	struct recorder late = {.watch.notify = record, .jobs = jobs};
	ck_assert(!jobs_watch(jobs, job, &late.watch));
	ck_assert(!jobs_unwatch(jobs, job, &first.watch));
	ck_assert_int_eq(late.calls, 0);
	job_unref(job);
	jobs_free(jobs);
}
END_TEST

START_TEST(test_retention_keeps_at_most_retain_max_oldest_dropped)
{
	struct jobs *jobs = jobs_new(3600, 3);
	uint64_t ids[5];
	for (int i = 0; i < 5; i++) {
		struct job *job = make(jobs, NULL);
		ids[i] = job->id;
		jobs_finish(jobs, job, JOB_DONE, json_integer(i), NULL, NULL, NULL);
		job_unref(job);
	}
	struct job *unfinished = make(jobs, NULL);
	ck_assert_ptr_null(jobs_find(jobs, ids[0]));
	ck_assert_ptr_null(jobs_find(jobs, ids[1]));
	for (int i = 2; i < 5; i++) {
		struct job *job = jobs_find(jobs, ids[i]);
		ck_assert_ptr_nonnull(job);
		job_unref(job);
	}
	struct jobs_counts counts;
	jobs_counts(jobs, &counts);
	ck_assert_uint_eq(counts.retained, 3);
	ck_assert_uint_eq(counts.by_state[JOB_DONE], 3);
	ck_assert_uint_eq(counts.by_state[JOB_QUEUED], 1);
	ck_assert_uint_eq(counts.submitted, 6);
	job_unref(unfinished);
	jobs_free(jobs);
}
END_TEST

START_TEST(test_expiry_drops_old_finished_jobs_only)
{
	struct jobs *jobs = jobs_new(10, 100);
	struct job *finished = make(jobs, NULL);
	struct job *running = make(jobs, NULL);
	jobs_start(jobs, running, 0, NULL);
	jobs_finish(jobs, finished, JOB_DONE, json_null(), NULL, NULL, NULL);
	uint64_t finished_id = finished->id;
	job_unref(finished);
	ck_assert_uint_eq(jobs_expire(jobs, now_monotonic()), 0);
	ck_assert_uint_eq(jobs_expire(jobs, now_monotonic() + 11), 1);
	ck_assert_ptr_null(jobs_find(jobs, finished_id));
	struct job *still = jobs_find(jobs, running->id);
	ck_assert_ptr_nonnull(still);
	job_unref(still);
	job_unref(running);
	jobs_free(jobs);
}
END_TEST

/* A page looks at a bounded number of ids: a filter that matches one job in
 * many comes back in short pages with a cursor, never a scan of the table. */
START_TEST(test_list_walks_a_bounded_number_of_ids_newest_first)
{
	size_t total = JOBS_LIST_SCAN_MAX + JOBS_LIST_SCAN_MAX / 2;
	struct jobs *jobs = jobs_new(3600, 100);
	struct job *rare = make(jobs, "rare");
	for (size_t i = 1; i < total; i++)
		job_unref(make(jobs, NULL));
	json_t *wanted = json_pack("{s:s}", "team", "rare");
	struct jobs_filter filter = {.state = -1, .labels = wanted, .limit = 10, .newest_first = true};
	bool more;
	uint64_t next;
	json_t *list = jobs_list(jobs, &filter, &more, &next);
	/* The newest JOBS_LIST_SCAN_MAX ids match nothing: an empty page, more to come. */
	ck_assert_uint_eq(json_array_size(list), 0);
	ck_assert(more);
	ck_assert_uint_eq(next, total - JOBS_LIST_SCAN_MAX + 1);
	json_decref(list);
	filter.before = next;
	list = jobs_list(jobs, &filter, &more, &next);
	ck_assert_uint_eq(json_array_size(list), 1);
	ck_assert_uint_eq(json_integer_value(json_object_get(json_array_get(list, 0), "id")),
	                  rare->id);
	ck_assert(!more);
	json_decref(list);
	json_decref(wanted);
	job_unref(rare);
	jobs_free(jobs);
}
END_TEST

START_TEST(test_list_filters_in_id_order_with_more)
{
	struct jobs *jobs = jobs_new(3600, 100);
	struct job *made[6];
	for (int i = 0; i < 6; i++)
		made[i] = make(jobs, i % 2 == 0 ? "even" : "odd");
	jobs_finish(jobs, made[0], JOB_DONE, json_null(), NULL, NULL, NULL);
	json_t *wanted = json_pack("{s:s}", "team", "even");
	struct jobs_filter filter = {.state = -1, .labels = wanted, .limit = 2};
	bool more;
	uint64_t next;
	json_t *list = jobs_list(jobs, &filter, &more, &next);
	ck_assert_uint_eq(json_array_size(list), 2);
	ck_assert(more);
	ck_assert_uint_eq(json_integer_value(json_object_get(json_array_get(list, 0), "id")),
	                  made[0]->id);
	ck_assert_uint_eq(json_integer_value(json_object_get(json_array_get(list, 1), "id")),
	                  made[2]->id);
	json_decref(list);
	filter.after = next;
	list = jobs_list(jobs, &filter, &more, &next);
	ck_assert_uint_eq(json_array_size(list), 1);
	ck_assert(!more);
	json_decref(list);
	struct jobs_filter by_state = {.state = JOB_DONE, .limit = 100};
	list = jobs_list(jobs, &by_state, &more, &next);
	ck_assert_uint_eq(json_array_size(list), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "state")),
	                 "done");
	json_decref(list);
	json_decref(wanted);
	for (int i = 0; i < 6; i++)
		job_unref(made[i]);
	jobs_free(jobs);
}
END_TEST

START_TEST(test_job_object_has_the_documented_fields)
{
	struct jobs *jobs = jobs_new(3600, 100);
	struct job *job = jobs_create(jobs, echo(), json_pack("{s:i}", "value", 1),
	                              json_pack("{s:s}", "team", "ci"), 2.5, NULL, NULL);
	jobs_start(jobs, job, 1, NULL);
	jobs_finish(jobs, job, JOB_FAILED, NULL, error_of("Timeout"), NULL, NULL);
	json_t *object = jobs_to_json(jobs, job);
	ck_assert_uint_eq(json_integer_value(json_object_get(object, "id")), job->id);
	ck_assert_str_eq(json_string_value(json_object_get(object, "fn")), "echo");
	ck_assert_str_eq(json_string_value(json_object_get(object, "state")), "failed");
	ck_assert(json_is_real(json_object_get(object, "created")));
	ck_assert(json_is_real(json_object_get(object, "started")));
	ck_assert(json_is_real(json_object_get(object, "finished")));
	ck_assert_double_eq(json_real_value(json_object_get(object, "timeout")), 2.5);
	ck_assert_int_eq(json_integer_value(json_object_get(object, "worker")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(object, "error"), "type")),
	                 "Timeout");
	json_decref(object);
	job_unref(job);
	jobs_free(jobs);
}
END_TEST

#define THREADS 4
#define JOBS_PER_THREAD 20000

static void *churn(void *argument)
{
	struct jobs *jobs = argument;
	for (int i = 0; i < JOBS_PER_THREAD; i++) {
		struct job *job = make(jobs, NULL);
		jobs_start(jobs, job, 0, NULL);
		jobs_finish(jobs, job, i % 3 == 0 ? JOB_FAILED : JOB_DONE, NULL,
		            i % 3 == 0 ? error_of("ValueError") : NULL, NULL, NULL);
		job_unref(job);
	}
	return NULL;
}

START_TEST(test_concurrent_churn_keeps_counts_exact)
{
	struct jobs *jobs = jobs_new(3600, 1000);
	pthread_t threads[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&threads[i], NULL, churn, jobs);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	struct jobs_counts counts;
	jobs_counts(jobs, &counts);
	ck_assert_uint_eq(counts.submitted, THREADS * JOBS_PER_THREAD);
	ck_assert_uint_eq(counts.retained, 1000);
	ck_assert_uint_eq(counts.by_state[JOB_DONE] + counts.by_state[JOB_FAILED], 1000);
	ck_assert_uint_eq(counts.by_state[JOB_QUEUED] + counts.by_state[JOB_RUNNING], 0);
	jobs_free(jobs);
}
END_TEST

static Suite *jobs_suite(void)
{
	Suite *suite = suite_create("jobs");
	TCase *states = tcase_create("states");
	tcase_add_test(states, test_new_job_is_queued_and_findable);
	tcase_add_test(states, test_first_finish_wins);
	tcase_add_test(states, test_cancelled_while_queued_never_starts);
	tcase_add_test(states, test_watchers_are_notified_once_without_locks);
	tcase_add_test(states, test_job_object_has_the_documented_fields);
	suite_add_tcase(suite, states);
	TCase *retention = tcase_create("retention");
	tcase_add_test(retention, test_retention_keeps_at_most_retain_max_oldest_dropped);
	tcase_add_test(retention, test_expiry_drops_old_finished_jobs_only);
	tcase_add_test(retention, test_list_filters_in_id_order_with_more);
	tcase_add_test(retention, test_list_walks_a_bounded_number_of_ids_newest_first);
	suite_add_tcase(suite, retention);
	TCase *threads = tcase_create("threads");
	tcase_set_timeout(threads, 60);
	tcase_add_test(threads, test_concurrent_churn_keeps_counts_exact);
	suite_add_tcase(suite, threads);
	return suite;
}

int main(void)
{
	stand_ins_register();
	SRunner *runner = srunner_create(jobs_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
