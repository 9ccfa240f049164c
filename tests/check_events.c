/*
 * The event feed's side of its durability (events.h), called directly: a
 * test plays the journal, keeping the rows events_collect hands out and
 * deleting each lane's rows up to its drop mark, as journal.c does in each
 * commit. The store must hold exactly what the ring holds (so within its
 * bounds), and a feed restored from it reads as before.
 */
#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/problem.h"
#include "daemon/core/events.h"
#include "daemon/core/jobs.h"
#include "weft/error.h"

/* The test's store: rows as journal.c writes them. */
struct row {
	long long lane;
	uint64_t seq;
	size_t bytes;
	char *body;
};

static struct {
	struct row rows[4096];
	size_t count;
	uint64_t upto;
} store;

static void store_clear(void)
{
	for (size_t i = 0; i < store.count; i++)
		free(store.rows[i].body);
	memset(&store, 0, sizeof(store));
}

/* One commit: the journal's INSERTs and per-lane DELETEs. */
static void commit(void)
{
	struct events_batch batch;
	ck_assert_int_eq(events_collect(store.upto, UINT64_MAX, 4096, &batch), WEFT_OK);
	ck_assert(!batch.more);
	for (size_t i = 0; i < batch.row_count; i++) {
		ck_assert_uint_gt(batch.rows[i].seq, store.upto);
		ck_assert_uint_lt(store.count, sizeof(store.rows) / sizeof(store.rows[0]));
		store.rows[store.count++] = (struct row){
			.lane = batch.rows[i].lane,
			.seq = batch.rows[i].seq,
			.bytes = batch.rows[i].bytes,
			.body = strndup(batch.rows[i].body, batch.rows[i].body_size),
		};
	}
	for (size_t m = 0; m < batch.mark_count; m++) {
		size_t kept = 0;
		for (size_t i = 0; i < store.count; i++) {
			if (store.rows[i].lane == batch.marks[m].lane &&
			    store.rows[i].seq <= batch.marks[m].dropped_upto)
				free(store.rows[i].body);
			else
				store.rows[kept++] = store.rows[i];
		}
		store.count = kept;
	}
	store.upto = batch.upto;
	events_batch_clear(&batch);
}

static const struct events_filter everything = {.all = true};

/* Every event the feed shows an admin: a new array. */
static json_t *read_everything(uint64_t epoch)
{
	json_t *list = NULL;
	uint64_t last = 0;
	struct problem problem;
	problem_init(&problem);
	ck_assert_int_eq(events_read(epoch, 0, &everything, 100000, &list, &last, &problem), WEFT_OK);
	return list;
}

static uint64_t cursor_seq(const json_t *event)
{
	const char *cursor = json_string_value(json_object_get(event, "cursor"));
	return strtoull(strchr(cursor, ':') + 1, NULL, 10);
}

/* Three users' jobs at uneven rates, and a queue change now and then. */
static void traffic(int rounds)
{
	for (int round = 0; round < rounds; round++) {
		for (int k = 0; k <= round % 7; k++)
			events_job((uint64_t)(round * 10 + k), (uid_t)(1000 + (round + k) % 3), "echo",
			           JOB_QUEUED, JOB_RUNNING, 0);
		if (round % 5 == 0)
			events_queue("builds", "set", round);
		commit();
	}
}

START_TEST(the_store_holds_what_the_ring_holds_within_its_bounds)
{
	struct events_limits limits = {.max_entries = 50, .max_bytes = 1 << 20, .share_entries = 20};
	events_init(NULL, &limits);
	for (int round = 0; round < 200; round++) {
		traffic(1);
		struct events_stats stats;
		events_stats(0, &stats);
		ck_assert_uint_le(store.count, 50);
		ck_assert_uint_eq(store.count, stats.held);
		/* The same events, seq by seq. */
		json_t *held = read_everything(stats.epoch);
		ck_assert_uint_eq(json_array_size(held), store.count);
		for (size_t i = 0; i < json_array_size(held); i++) {
			bool found = false;
			for (size_t j = 0; j < store.count && !found; j++)
				found = store.rows[j].seq == cursor_seq(json_array_get(held, i));
			ck_assert_msg(found, "event %" PRIu64 " is not in the store",
			              cursor_seq(json_array_get(held, i)));
		}
		json_decref(held);
		/* No lane holds more than its share. */
		for (long long lane = 1000; lane < 1003; lane++) {
			size_t in_lane = 0;
			for (size_t j = 0; j < store.count; j++)
				in_lane += store.rows[j].lane == lane;
			ck_assert_uint_le(in_lane, 20);
		}
	}
	events_fini();
	store_clear();
}
END_TEST

/* Sorts the store by seq, as replay reads it. */
static int by_seq(const void *left, const void *right)
{
	const struct row *a = left, *b = right;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The events of one lane in list: a new array. */
static json_t *lane_of(const json_t *list, long long lane)
{
	json_t *out = json_array();
	size_t i;
	json_t *event;
	json_array_foreach(list, i, event) {
		bool queue = strcmp(json_string_value(json_object_get(event, "type")), "queue") == 0;
		if (queue ? lane == EVENTS_QUEUE_LANE
		          : json_integer_value(json_object_get(event, "owner")) == lane)
			json_array_append(out, event);
	}
	return out;
}

static void restore(const struct events_limits *limits, uint64_t epoch, uint64_t reserved)
{
	events_init(NULL, limits);
	events_restore_begin(epoch);
	qsort(store.rows, store.count, sizeof(store.rows[0]), by_seq);
	for (size_t i = 0; i < store.count; i++)
		ck_assert_int_eq(events_restore(store.rows[i].seq, store.rows[i].lane,
		                                store.rows[i].bytes, store.rows[i].body),
		                 WEFT_OK);
	events_restore_end(store.upto, reserved);
}

START_TEST(a_restored_feed_reads_as_before_and_expires_the_lost_seqs)
{
	struct events_limits limits = {.max_entries = 50, .max_bytes = 1 << 20, .share_entries = 20};
	events_init(NULL, &limits);
	traffic(40);
	struct events_stats stats;
	events_stats(0, &stats);
	uint64_t epoch = stats.epoch;
	json_t *before = read_everything(epoch);
	events_fini();
	/* As after a kill -9 with seqs reserved up to upto + 100. */
	uint64_t reserved = store.upto + 100;
	restore(&limits, epoch, reserved);
	json_t *after = read_everything(epoch);
	ck_assert_msg(json_equal(before, after), "before %s\nafter %s", json_dumps(before, 0),
	              json_dumps(after, 0));
	json_decref(after);
	/* A cursor a reader may have been given before the kill, past what was kept. */
	json_t *list = NULL;
	uint64_t last = 0;
	struct problem problem;
	problem_init(&problem);
	ck_assert_int_eq(events_read(epoch, store.upto + 1, &everything, 10, &list, &last, &problem),
	                 WEFT_ECURSOREXPIRED);
	ck_assert_uint_eq(last, reserved);
	/* The newest kept one's cursor reads on; this run's first event comes after the gap. */
	events_job(1, 1000, "echo", JOB_RUNNING, JOB_DONE, -1);
	ck_assert_int_eq(events_read(epoch, store.upto, &everything, 10, &list, &last, &problem),
	                 WEFT_OK);
	ck_assert_uint_eq(json_array_size(list), 1);
	ck_assert_uint_eq(cursor_seq(json_array_get(list, 0)), reserved + 1);
	json_decref(list);
	events_fini();
	/* A smaller ring keeps, of each lane, its newest that fit (the ring's
	 * own choice of whom to drop from). */
	struct events_limits smaller = {.max_entries = 10, .max_bytes = 1 << 20};
	restore(&smaller, epoch, reserved);
	after = read_everything(epoch);
	ck_assert_uint_eq(json_array_size(after), 10);
	for (long long lane = -1; lane < 1003; lane = lane == -1 ? 1000 : lane + 1) {
		json_t *old = lane_of(before, lane), *kept = lane_of(after, lane);
		size_t skip = json_array_size(old) - json_array_size(kept);
		for (size_t i = 0; i < json_array_size(kept); i++)
			ck_assert(json_equal(json_array_get(old, skip + i), json_array_get(kept, i)));
		json_decref(old);
		json_decref(kept);
	}
	json_decref(after);
	json_decref(before);
	events_fini();
	store_clear();
}
END_TEST

START_TEST(an_unreadable_stored_event_is_refused)
{
	struct events_limits limits = {.max_entries = 10, .max_bytes = 1 << 20};
	events_init(NULL, &limits);
	ck_assert_int_eq(events_restore(1, 1000, 200, "{\"type\":\"job\"}"), WEFT_EINVAL);
	ck_assert_int_eq(events_restore(2, 1000, 200, "not json"), WEFT_EINVAL);
	ck_assert_int_eq(events_restore(3, EVENTS_QUEUE_LANE, 200,
	                                "{\"type\":\"queue\",\"time\":1,\"queue\":\"q\","
	                                "\"change\":\"explode\"}"),
	                 WEFT_EINVAL);
	struct events_stats stats;
	events_stats(0, &stats);
	ck_assert_uint_eq(stats.held, 0);
	events_fini();
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("events");
	TCase *durable = tcase_create("durability");
	tcase_add_test(durable, the_store_holds_what_the_ring_holds_within_its_bounds);
	tcase_add_test(durable, a_restored_feed_reads_as_before_and_expires_the_lost_seqs);
	tcase_add_test(durable, an_unreadable_stored_event_is_refused);
	suite_add_tcase(suite, durable);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
