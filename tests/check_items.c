/* items (a job's yielded items) and events (the event feed's ring), as pure
 * modules: the bounds, the backpressure signal, acknowledgement by reading,
 * cursors and their expiry, and who sees which event. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/problem.h"
#include "daemon/base/watch.h"
#include "daemon/core/events.h"
#include "daemon/core/items.h"
#include "daemon/core/jobs.h"
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
	items_configure(4096, 1024);
}

static int notified;
static void count_notify(struct watch *watch)
{
	(void)watch;
	notified++;
}

/* Pushes integer value; returns whether it was paused. */
static bool push(struct items *items, int value, struct watch *space)
{
	struct problem problem;
	problem_init(&problem);
	bool paused = false;
	json_t *back = NULL;
	ck_assert_weft(items_push(items, json_integer(value), space, &paused, &back, &problem),
	               WEFT_OK);
	json_decref(back);
	return paused;
}

START_TEST(reading_takes_the_items_before_and_wakes_a_paused_producer)
{
	struct items *items = items_new(1001, 2);
	struct watch space = {.notify = count_notify};
	notified = 0;
	ck_assert(!push(items, 1, &space));
	ck_assert(!push(items, 2, &space));
	ck_assert(push(items, 3, &space)); /* the buffer of 2 is full */
	json_t *out = NULL;
	uint64_t count, first;
	ck_assert_int_eq(items_read(items, 0, 10, 1 << 20, &out, &count, &first), ITEMS_READ_ITEMS);
	ck_assert_int_eq(json_array_size(out), 2);
	json_decref(out);
	ck_assert_int_eq(notified, 0); /* reading item 0 takes nothing */
	ck_assert_int_eq(items_read(items, 1, 1, 1 << 20, &out, &count, &first), ITEMS_READ_ITEMS);
	json_decref(out);
	ck_assert_int_eq(notified, 1);
	ck_assert_int_eq(first, 1);
	ck_assert_int_eq(items_read(items, 0, 1, 1 << 20, &out, &count, &first), ITEMS_READ_GONE);
	ck_assert_int_eq(items_read(items, 2, 1, 1 << 20, &out, &count, &first), ITEMS_READ_NOT_YET);
	items_close(items);
	ck_assert_int_eq(items_read(items, 2, 1, 1 << 20, &out, &count, &first), ITEMS_READ_END);
	ck_assert_int_eq(count, 2);
	items_free(items);
	ck_assert_uint_eq(quota_held(QUOTA_ITEM_BYTES, 1001), 0);
}
END_TEST

START_TEST(the_byte_budget_pauses_and_one_item_always_fits)
{
	items_configure(200, 1024);
	struct items *items = items_new(1001, 0);
	struct watch space = {.notify = count_notify};
	int pushed = 0;
	while (!push(items, pushed, &space))
		pushed++;
	struct items_stats stats;
	items_stats(items, &stats);
	ck_assert_int_ge(pushed, 1);
	ck_assert_uint_le(stats.bytes, 200);
	ck_assert_uint_eq(stats.pauses, 1);
	ck_assert_uint_eq(quota_held(QUOTA_ITEM_BYTES, 1001), stats.bytes);
	/* The producer stops waiting: its registration is taken back. */
	ck_assert(items_forget_space(items, &space));
	ck_assert(!items_forget_space(items, &space));
	items_free(items);
}
END_TEST

START_TEST(too_large_items_and_a_used_up_share_are_refused)
{
	struct items *items = items_new(1001, 0);
	struct problem problem;
	problem_init(&problem);
	bool paused;
	json_t *back = NULL;
	char big[2048];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_weft(items_push(items, json_string(big), NULL, &paused, &back, &problem),
	               WEFT_ETOOLARGE);
	ck_assert_msg(strstr(problem.message, "--max-item-bytes") != NULL, "%s", problem.message);
	quota_set_limit(QUOTA_ITEM_BYTES, 100);
	ck_assert_weft(items_push(items, json_integer(1), NULL, &paused, &back, &problem), WEFT_OK);
	ck_assert_weft(items_push(items, json_integer(2), NULL, &paused, &back, &problem), WEFT_EBUSY);
	ck_assert_msg(strstr(problem.message, "--max-item-bytes-per-user") != NULL, "%s",
	              problem.message);
	/* Another user is not limited by it. */
	struct items *other = items_new(1002, 0);
	ck_assert_weft(items_push(other, json_integer(1), NULL, &paused, &back, &problem), WEFT_OK);
	items_close(items);
	ck_assert_weft(items_push(items, json_integer(3), NULL, &paused, &back, &problem),
	               WEFT_ECANCELED);
	items_free(items);
	items_free(other);
}
END_TEST

START_TEST(a_reader_is_notified_when_its_item_comes_or_the_stream_ends)
{
	struct items *items = items_new(1001, 0);
	struct watch reader = {.notify = count_notify, .key = 1};
	notified = 0;
	ck_assert(items_watch(items, &reader));
	push(items, 1, NULL); /* index 0: not the one it waits for */
	ck_assert_int_eq(notified, 0);
	push(items, 2, NULL);
	ck_assert_int_eq(notified, 1);
	ck_assert(!items_unwatch(items, &reader));
	reader.key = 5;
	ck_assert(items_watch(items, &reader));
	items_close(items);
	ck_assert_int_eq(notified, 2);
	ck_assert(!items_watch(items, &reader)); /* closed: ready at once */
	items_free(items);
}
END_TEST

/* --------------------------------------------------------------- events */

START_TEST(the_ring_keeps_its_bound_and_an_old_cursor_is_expired)
{
	events_init(NULL, &(struct events_limits){.max_entries = 4, .max_bytes = 1 << 20});
	for (int i = 0; i < 6; i++)
		events_queue("q", "pause", 0);
	struct events_filter everyone = {.viewer = 1001};
	struct events_stats stats;
	events_stats(0, &stats);
	ck_assert_uint_eq(stats.held, 4);
	ck_assert_uint_eq(stats.dropped, 2);
	json_t *out = NULL;
	uint64_t last = 0;
	struct problem problem;
	problem_init(&problem);
	ck_assert_weft(events_read(stats.epoch, 1, &everyone, 10, &out, &last, &problem),
	               WEFT_ECURSOREXPIRED);
	ck_assert_uint_eq(last, 2); /* read on after 2: events 3 to 6 are held */
	ck_assert_weft(events_read(stats.epoch, last, &everyone, 10, &out, &last, &problem), WEFT_OK);
	ck_assert_int_eq(json_array_size(out), 4);
	ck_assert_uint_eq(last, 6);
	json_decref(out);
	ck_assert_weft(events_read(stats.epoch + 1, 5, &everyone, 10, &out, &last, &problem),
	               WEFT_ECURSOREXPIRED);
	ck_assert_weft(events_read(stats.epoch, 99, &everyone, 10, &out, &last, &problem),
	               WEFT_EBADFIELD);
	events_fini();
}
END_TEST

/* n job events of owner, ids from first. */
static void job_events(uid_t owner, uint64_t first, int n)
{
	for (int i = 0; i < n; i++)
		events_job(first + (uint64_t)i, owner, "echo", JOB_STATE_COUNT, JOB_QUEUED, -1);
}

START_TEST(a_users_flood_drops_that_users_oldest_events_and_nobody_elses)
{
	events_init(NULL, &(struct events_limits){.max_entries = 100, .max_bytes = 1 << 20,
	                                          .share_entries = 10});
	job_events(1002, 1, 3); /* bob: seqs 1 to 3 */
	struct events_stats stats;
	events_stats(1002, &stats);
	job_events(1001, 100, 500); /* alice floods past her share of 10 */
	struct events_filter bob = {.viewer = 1002}, alice = {.viewer = 1001};
	json_t *out = NULL;
	uint64_t last = 0;
	struct problem problem;
	problem_init(&problem);
	/* Bob's cursor from before the flood is still good, and all his events are there. */
	ck_assert_weft(events_read(stats.epoch, 0, &bob, 100, &out, &last, &problem), WEFT_OK);
	ck_assert_int_eq(json_array_size(out), 3);
	ck_assert_uint_eq(last, 503); /* he has read to the end of the feed */
	json_decref(out);
	ck_assert_weft(events_read(stats.epoch, 1, &bob, 100, &out, &last, &problem), WEFT_OK);
	ck_assert_int_eq(json_array_size(out), 2);
	json_decref(out);
	/* Alice holds her newest ten; her old cursor is expired. */
	ck_assert_weft(events_read(stats.epoch, 3, &alice, 100, &out, &last, &problem),
	               WEFT_ECURSOREXPIRED);
	ck_assert_uint_eq(last, 493);
	ck_assert_weft(events_read(stats.epoch, last, &alice, 100, &out, &last, &problem), WEFT_OK);
	ck_assert_int_eq(json_array_size(out), 10);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(out, 0), "id")), 590);
	json_decref(out);
	/* An admin sees both lanes merged in seq order. */
	struct events_filter admin = {.all = true};
	ck_assert_weft(events_read(stats.epoch, 0, &admin, 100, &out, &last, &problem), WEFT_OK);
	ck_assert_int_eq(json_array_size(out), 13);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(out, 2), "id")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(out, 3), "id")), 590);
	json_decref(out);
	events_stats(1001, &stats);
	ck_assert_uint_eq(stats.held, 13);
	ck_assert_uint_eq(stats.users, 2);
	ck_assert_uint_eq(stats.yours_held, 10);
	ck_assert_uint_eq(stats.yours_dropped, 490);
	events_fini();
}
END_TEST

START_TEST(a_users_byte_share_bounds_that_users_events)
{
	events_init(NULL, &(struct events_limits){.max_entries = 100000, .max_bytes = 1 << 20,
	                                          .share_bytes = 4096});
	job_events(1002, 1, 2);
	job_events(1001, 100, 1000);
	struct events_stats stats;
	events_stats(1001, &stats);
	ck_assert_uint_eq(stats.share_bytes, 4096);
	ck_assert_uint_le(stats.yours_bytes, 4096);
	ck_assert_uint_gt(stats.yours_held, 0);
	ck_assert_uint_eq(stats.yours_held + stats.yours_dropped, 1000);
	events_stats(1002, &stats);
	ck_assert_uint_eq(stats.yours_held, 2);
	ck_assert_uint_eq(stats.yours_dropped, 0);
	events_fini();
}
END_TEST

START_TEST(a_full_feed_drops_from_the_user_holding_the_most)
{
	/* Shares of 6 out of 10: two users at their share pass the feed's bound. */
	events_init(NULL, &(struct events_limits){.max_entries = 10, .max_bytes = 1 << 20,
	                                          .share_entries = 6});
	job_events(1002, 1, 2);
	job_events(1001, 100, 50);
	job_events(1003, 200, 50);
	struct events_stats stats;
	events_stats(1002, &stats);
	ck_assert_uint_eq(stats.held, 10);
	ck_assert_uint_eq(stats.users, 3);
	ck_assert_uint_eq(stats.yours_held, 2);
	ck_assert_uint_eq(stats.yours_dropped, 0);
	/* The two floods lost to each other, the heavier first. */
	events_stats(1001, &stats);
	ck_assert_uint_eq(stats.yours_held, 3);
	events_stats(1003, &stats);
	ck_assert_uint_eq(stats.yours_held, 5);
	events_fini();
}
END_TEST

START_TEST(a_watch_wakes_only_for_an_event_its_filter_keeps)
{
	events_init(NULL, &(struct events_limits){.max_entries = 100, .max_bytes = 1 << 20});
	uint64_t ids[] = {3, 7};
	struct events_filter jobs_only = {.viewer = 1001, .ids = ids, .id_count = 2};
	struct watch follower = {.notify = count_notify, .key = 0, .data = &jobs_only};
	notified = 0;
	ck_assert(events_watch(&follower));
	events_queue("q", "resume", 0); /* a queue event: not for an ids filter */
	ck_assert_int_eq(notified, 0);
	ck_assert(events_unwatch(&follower));
	struct events_filter any = {.viewer = 1001};
	follower.data = &any;
	ck_assert(!events_watch(&follower)); /* the queue event is there already */
	ck_assert_int_eq(events_parse_cursor("12:34", &ids[0], &ids[1]), 0);
	ck_assert_uint_eq(ids[0], 12);
	ck_assert_uint_eq(ids[1], 34);
	ck_assert_int_eq(events_parse_cursor("12", &ids[0], &ids[1]), -1);
	ck_assert_int_eq(events_parse_cursor("a:1", &ids[0], &ids[1]), -1);
	ck_assert_int_eq(events_parse_cursor("1:2x", &ids[0], &ids[1]), -1);
	events_fini();
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("items");
	TCase *tcase = tcase_create("items and events");
	tcase_add_checked_fixture(tcase, setup, NULL);
	tcase_add_test(tcase, reading_takes_the_items_before_and_wakes_a_paused_producer);
	tcase_add_test(tcase, the_byte_budget_pauses_and_one_item_always_fits);
	tcase_add_test(tcase, too_large_items_and_a_used_up_share_are_refused);
	tcase_add_test(tcase, a_reader_is_notified_when_its_item_comes_or_the_stream_ends);
	tcase_add_test(tcase, the_ring_keeps_its_bound_and_an_old_cursor_is_expired);
	tcase_add_test(tcase, a_watch_wakes_only_for_an_event_its_filter_keeps);
	tcase_add_test(tcase, a_users_flood_drops_that_users_oldest_events_and_nobody_elses);
	tcase_add_test(tcase, a_users_byte_share_bounds_that_users_events);
	tcase_add_test(tcase, a_full_feed_drops_from_the_user_holding_the_most);
	suite_add_tcase(suite, tcase);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
