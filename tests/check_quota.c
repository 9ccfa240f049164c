/* quota: per-user shares of the daemon's limits. A user is refused at its
 * own limit with a message naming the option and the uid, other users are
 * not, and a job's count is given back exactly once when it finishes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/core/principal.h"
#include "daemon/base/problem.h"
#include "daemon/core/quota.h"
#include "weft/error.h"

#define ck_assert_weft(actual, expected)                                                      \
	ck_assert_msg((actual) == (expected), "got %s, expected %s", weft_error_code(actual), \
	              weft_error_code(expected))

static void setup(void)
{
	quota_reset();
	for (int kind = 0; kind < QUOTA_KIND_COUNT; kind++)
		quota_set_limit((enum quota_kind)kind, 0);
}

START_TEST(test_a_user_is_refused_at_its_limit_and_told_which)
{
	struct problem problem;
	problem_init(&problem);
	quota_set_limit(QUOTA_PENDING, 3);
	ck_assert_weft(quota_take(QUOTA_PENDING, 1001, 2, &problem), WEFT_OK);
	ck_assert_weft(quota_take(QUOTA_PENDING, 1001, 1, &problem), WEFT_OK);
	ck_assert_weft(quota_take(QUOTA_PENDING, 1001, 1, &problem), WEFT_EBUSY);
	ck_assert_weft(problem.code, WEFT_EBUSY);
	ck_assert_msg(strstr(problem.message, "--max-pending-per-user") != NULL, "%s",
	              problem.message);
	ck_assert_msg(strstr(problem.message, "uid 1001") != NULL, "%s", problem.message);
	ck_assert_uint_eq(quota_held(QUOTA_PENDING, 1001), 3);
}
END_TEST

START_TEST(test_one_users_quota_does_not_limit_another)
{
	quota_set_limit(QUOTA_WAITERS, 1);
	ck_assert_weft(quota_take(QUOTA_WAITERS, 1001, 1, NULL), WEFT_OK);
	ck_assert_weft(quota_take(QUOTA_WAITERS, 1001, 1, NULL), WEFT_EBUSY);
	ck_assert_weft(quota_take(QUOTA_WAITERS, 1002, 1, NULL), WEFT_OK);
	ck_assert_uint_eq(quota_users(), 2);
	quota_give(QUOTA_WAITERS, 1001, 1);
	ck_assert_weft(quota_take(QUOTA_WAITERS, 1001, 1, NULL), WEFT_OK);
}
END_TEST

START_TEST(test_an_amount_larger_than_the_limit_is_refused)
{
	quota_set_limit(QUOTA_BYTES, 100);
	ck_assert_weft(quota_take(QUOTA_BYTES, 7, UINT64_MAX, NULL), WEFT_EBUSY);
	ck_assert_weft(quota_take(QUOTA_BYTES, 7, 101, NULL), WEFT_EBUSY);
	ck_assert_weft(quota_take(QUOTA_BYTES, 7, 100, NULL), WEFT_OK);
	ck_assert_weft(quota_take(QUOTA_PENDING + QUOTA_KIND_COUNT, 7, 1, NULL), WEFT_EINVAL);
}
END_TEST

START_TEST(test_users_with_nothing_held_leave_the_table)
{
	quota_charge(QUOTA_CONNECTIONS, 5, 2);
	quota_take(QUOTA_PENDING, 5, 1, NULL);
	ck_assert_uint_eq(quota_users(), 1);
	quota_give(QUOTA_CONNECTIONS, 5, 2);
	ck_assert_uint_eq(quota_users(), 1);
	quota_give(QUOTA_PENDING, 5, 1);
	ck_assert_uint_eq(quota_users(), 0);
	/* A refused take leaves no entry behind. */
	quota_set_limit(QUOTA_PENDING, 1);
	ck_assert_weft(quota_take(QUOTA_PENDING, 6, 2, NULL), WEFT_EBUSY);
	ck_assert_uint_eq(quota_users(), 0);
}
END_TEST

/* jobs_create counts a job against its owner; the call of jobs_finish that
 * finishes it gives the count back, and a second finish does not. */
START_TEST(test_a_job_counts_until_it_finishes_exactly_once)
{
	struct jobs *jobs = jobs_new(3600, 100);
	struct principal *owner = principal_for_daemon();
	struct job *job = jobs_create(jobs, functions_find("echo"), json_object(), NULL, 0, owner,
	                              NULL);
	ck_assert_uint_eq(quota_held(QUOTA_PENDING, owner->uid), 1);
	ck_assert(jobs_finish(jobs, job, JOB_DONE, json_null(), NULL, NULL, NULL));
	ck_assert_uint_eq(quota_held(QUOTA_PENDING, owner->uid), 0);
	ck_assert(!jobs_finish(jobs, job, JOB_CANCELLED, NULL,
	                       json_pack("{s:s,s:s}", "type", "Cancelled", "message", "x"), NULL,
	                       NULL));
	ck_assert_uint_eq(quota_held(QUOTA_PENDING, owner->uid), 0);
	/* Its result's bytes are held until retention drops it. */
	ck_assert_uint_eq(jobs_expire(jobs, 1e12), 1);
	ck_assert_uint_eq(quota_users(), 0);
	job_unref(job);
	principal_unref(owner);
	jobs_free(jobs);
}
END_TEST

/* A job's bytes (jobs_add_bytes, then its result at finish) are charged to
 * the table and to its owner, and given back once when the table drops it. */
START_TEST(test_a_jobs_bytes_are_charged_until_it_is_dropped)
{
	struct jobs *jobs = jobs_new(3600, 100);
	struct principal *owner = principal_for_daemon();
	json_t *args = json_pack("{s:s}", "a", "0123456789");
	uint64_t args_bytes = jobs_json_bytes(args);
	ck_assert_uint_eq(args_bytes, strlen("{\"a\":\"0123456789\"}"));
	struct job *job = jobs_create(jobs, functions_find("echo"), args, NULL, 0, owner, NULL);
	jobs_add_bytes(jobs, job, args_bytes);
	ck_assert_uint_eq(quota_held(QUOTA_BYTES, owner->uid), args_bytes);
	ck_assert_uint_eq(jobs_unfinished_bytes(jobs), args_bytes);
	ck_assert(jobs_finish(jobs, job, JOB_DONE, json_string("done!"), NULL, NULL, NULL));
	/* The result ("done!" with its quotes) is held now; nothing is unfinished. */
	ck_assert_uint_eq(quota_held(QUOTA_BYTES, owner->uid), args_bytes + 7);
	ck_assert_uint_eq(jobs_unfinished_bytes(jobs), 0);
	struct jobs_counts counts;
	jobs_counts(jobs, &counts);
	ck_assert_uint_eq(counts.bytes, args_bytes + 7);
	ck_assert_uint_eq(counts.retained_bytes, args_bytes + 7);
	ck_assert_uint_eq(jobs_expire(jobs, 1e12), 1);
	ck_assert_uint_eq(quota_held(QUOTA_BYTES, owner->uid), 0);
	jobs_counts(jobs, &counts);
	ck_assert_uint_eq(counts.bytes, 0);
	ck_assert_uint_eq(counts.retained_bytes, 0);
	job_unref(job);
	principal_unref(owner);
	jobs_free(jobs);
}
END_TEST

/* Past --max-bytes, finished jobs are dropped oldest first to make room;
 * unfinished ones are never dropped. */
START_TEST(test_the_byte_budget_drops_the_oldest_finished_jobs)
{
	struct jobs *jobs = jobs_new(3600, 100);
	jobs_set_max_bytes(jobs, 250);
	struct principal *owner = principal_for_daemon();
	struct job *made[4];
	for (int i = 0; i < 3; i++) {
		made[i] = jobs_create(jobs, functions_find("echo"), json_object(), NULL, 0, owner, NULL);
		jobs_add_bytes(jobs, made[i], 100);
		if (i < 2)
			ck_assert(jobs_finish(jobs, made[i], JOB_DONE, json_null(), NULL, NULL, NULL));
	}
	/* 300 > 250: the oldest finished job went when the third was charged. */
	ck_assert_ptr_null(jobs_find(jobs, made[0]->id));
	struct job *kept = jobs_find(jobs, made[1]->id);
	ck_assert_ptr_nonnull(kept);
	job_unref(kept);
	made[3] = jobs_create(jobs, functions_find("echo"), json_object(), NULL, 0, owner, NULL);
	jobs_add_bytes(jobs, made[3], 200);
	/* The other finished one went too; the unfinished ones stay, over budget. */
	ck_assert_ptr_null(jobs_find(jobs, made[1]->id));
	ck_assert_uint_eq(jobs_unfinished_bytes(jobs), 300);
	ck_assert_uint_eq(quota_held(QUOTA_BYTES, owner->uid), 300);
	for (int i = 0; i < 4; i++)
		job_unref(made[i]);
	principal_unref(owner);
	jobs_free(jobs);
}
END_TEST

static Suite *quota_suite(void)
{
	Suite *suite = suite_create("quota");
	TCase *table = tcase_create("table");
	tcase_add_checked_fixture(table, setup, NULL);
	tcase_add_test(table, test_a_user_is_refused_at_its_limit_and_told_which);
	tcase_add_test(table, test_one_users_quota_does_not_limit_another);
	tcase_add_test(table, test_an_amount_larger_than_the_limit_is_refused);
	tcase_add_test(table, test_users_with_nothing_held_leave_the_table);
	tcase_add_test(table, test_a_job_counts_until_it_finishes_exactly_once);
	tcase_add_test(table, test_a_jobs_bytes_are_charged_until_it_is_dropped);
	tcase_add_test(table, test_the_byte_budget_drops_the_oldest_finished_jobs);
	suite_add_tcase(suite, table);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(quota_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
