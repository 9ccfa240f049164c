/*
 * The event feed across restarts (issue 13's cursors, issue 12's journal),
 * end to end: a real weftd on a state directory of the test's own, stopped
 * (SIGTERM) or killed (SIGKILL) and started again on it, read with the
 * cursor of the run before. Without a journal a restart still expires every
 * cursor.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/as_user.h"
#include "tests/as_user_call.h"
#include "tests/fixture.h"
#include "tests/wire.h"

/* A state directory owned by the test, and weftd's arguments for it. */
struct store {
	char directory[128];
	const char *args[8];
};

static void store_make(struct store *store, const char *const *extra)
{
	snprintf(store->directory, sizeof(store->directory), "/tmp/weft-events-XXXXXX");
	ck_assert_msg(mkdtemp(store->directory) != NULL, "mkdtemp: %s", strerror(errno));
	size_t n = 0;
	store->args[n++] = "--state-dir";
	store->args[n++] = store->directory;
	store->args[n++] = "--sync";
	store->args[n++] = "normal";
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 7; i++)
		store->args[n++] = extra[i];
	store->args[n] = NULL;
}

static void store_remove(const struct store *store)
{
	char command[256];
	snprintf(command, sizeof(command), "rm -rf '%s'", store->directory);
	ck_assert_int_eq(system(command), 0);
}

static void kill_daemon(fixture *daemon)
{
	int status;
	fixture_stop_within(daemon, SIGKILL, 10, &status);
}

static json_t *call(const fixture *daemon, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
static json_t *call(const fixture *daemon, const char *format, ...)
{
	char text[4096];
	va_list list;
	va_start(list, format);
	vsnprintf(text, sizeof(text), format, list);
	va_end(list);
	json_t *reply = wire_call(daemon->url, text);
	ck_assert_msg(reply != NULL, "no reply to %s", text);
	return reply;
}

/* Runs an echo job to its end (the reply waits for it); its id. */
static json_int_t run_echo(const fixture *daemon)
{
	json_t *reply = call(daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
	                             "\"wait\":10}");
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "submit: %s",
	              wire_error_code(reply));
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	return id;
}

/* A commit barrier: a cancel of an unknown id is answered after a commit,
 * and that commit holds every event appended before it. */
static void barrier(const fixture *daemon)
{
	json_decref(call(daemon, "{\"op\":\"cancel\",\"id\":999999999}"));
}

static uint64_t seq_of(const char *cursor)
{
	const char *colon = strchr(cursor, ':');
	ck_assert_msg(colon != NULL, "not a cursor: %s", cursor);
	return strtoull(colon + 1, NULL, 10);
}

static uint64_t epoch_of(const char *cursor)
{
	return strtoull(cursor, NULL, 10);
}

/*
 * Reads every event after `after` (NULL: from the oldest), page by page, into
 * a new array; the reply's cursor into cursor[64]. Fails the test on an
 * error reply, and when two events share a cursor or come out of order.
 */
static json_t *read_all(const fixture *daemon, const char *after, char *cursor)
{
	json_t *all = json_array();
	char at[64] = "";
	if (after != NULL)
		snprintf(at, sizeof(at), "%s", after);
	for (int page = 0; page < 1000; page++) {
		json_t *reply = at[0] != '\0'
		                        ? call(daemon, "{\"op\":\"events\",\"after\":\"%s\",\"limit\":50}", at)
		                        : call(daemon, "{\"op\":\"events\",\"limit\":50}");
		ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "events after %s: %s (%s)", at,
		              wire_error_code(reply),
		              json_string_value(json_object_get(reply, "message")));
		json_t *events = json_object_get(reply, "events");
		size_t i;
		json_t *event;
		json_array_foreach(events, i, event) {
			const char *mine = json_string_value(json_object_get(event, "cursor"));
			if (at[0] != '\0')
				ck_assert_msg(seq_of(mine) > seq_of(at), "event %s came after %s", mine, at);
			snprintf(at, sizeof(at), "%s", mine);
			json_array_append(all, event);
		}
		snprintf(at, sizeof(at), "%s", json_string_value(json_object_get(reply, "cursor")));
		bool done = json_array_size(events) == 0;
		json_decref(reply);
		if (done)
			break;
	}
	snprintf(cursor, 64, "%s", at);
	return all;
}

/* "state,state,…" of job id's events in list. */
static void states_of(const json_t *list, json_int_t id, char *out, size_t size)
{
	out[0] = '\0';
	size_t i;
	json_t *event;
	json_array_foreach(list, i, event) {
		if (json_integer_value(json_object_get(event, "id")) != id)
			continue;
		if (out[0] != '\0')
			strncat(out, ",", size - strlen(out) - 1);
		strncat(out, json_string_value(json_object_get(event, "state")), size - strlen(out) - 1);
	}
}

/* Runs `count` echo jobs and checks that the events after `cursor` are
 * exactly theirs: queued, running, done each, nothing else. */
static void expect_only_new_jobs(const fixture *daemon, const char *cursor, int count)
{
	json_int_t ids[8];
	for (int i = 0; i < count; i++)
		ids[i] = run_echo(daemon);
	char end[64];
	json_t *events = read_all(daemon, cursor, end);
	ck_assert_int_eq(json_array_size(events), (size_t)(3 * count));
	char states[256];
	for (int i = 0; i < count; i++) {
		states_of(events, ids[i], states, sizeof(states));
		ck_assert_msg(strcmp(states, "queued,running,done") == 0, "job %lld: %s",
		              (long long)ids[i], states);
	}
	json_decref(events);
}

START_TEST(a_cursor_stays_good_across_a_stop)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	run_echo(&daemon);
	run_echo(&daemon);
	char cursor[64];
	json_t *before = read_all(&daemon, NULL, cursor);
	ck_assert_int_eq(json_array_size(before), 6);
	json_decref(before);
	fixture_stop(&daemon);
	fixture_start(&daemon, store.args);
	/* The old events are still there, under the same cursors. */
	char again[64];
	json_t *kept = read_all(&daemon, NULL, again);
	ck_assert_int_eq(json_array_size(kept), 6);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(kept, 5), "cursor")),
	                 cursor);
	json_decref(kept);
	expect_only_new_jobs(&daemon, cursor, 2);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(events_read_before_a_kill_9_are_kept)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	run_echo(&daemon);
	char cursor[64];
	json_decref(read_all(&daemon, NULL, cursor));
	barrier(&daemon);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	expect_only_new_jobs(&daemon, cursor, 2);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(replays_interrupted_events_come_after_the_cursor)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_t *reply = call(&daemon, "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":"
	                              "[\"sleep\",\"60\"]}}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	ck_assert_int_gt(id, 0);
	json_decref(reply);
	/* Read up to the job's start (30 s hang guard), then commit and kill. */
	char cursor[64] = "", states[256] = "";
	double give_up = fixture_now() + 30;
	json_t *seen = json_array();
	while (strcmp(states, "queued,running") != 0) {
		ck_assert_msg(fixture_now() < give_up, "job %lld never started: %s", (long long)id,
		              states);
		json_t *more = read_all(&daemon, cursor[0] != '\0' ? cursor : NULL, cursor);
		json_array_extend(seen, more);
		json_decref(more);
		states_of(seen, id, states, sizeof(states));
		if (strcmp(states, "queued,running") != 0)
			usleep(10000);
	}
	json_decref(seen);
	barrier(&daemon);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	char end[64];
	json_t *after = read_all(&daemon, cursor, end);
	states_of(after, id, states, sizeof(states));
	ck_assert_str_eq(states, "failed");
	json_t *event = json_array_get(after, 0);
	ck_assert_str_eq(json_string_value(json_object_get(event, "from")), "running");
	ck_assert_int_gt(seq_of(json_string_value(json_object_get(event, "cursor"))),
	                 seq_of(cursor));
	json_decref(after);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(a_cursor_past_what_the_store_kept_is_expired_with_the_oldest)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	run_echo(&daemon);
	char cursor[64];
	json_decref(read_all(&daemon, NULL, cursor));
	barrier(&daemon);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	/* A reader who saw an event the kill lost: the seq after the last kept one. */
	char lost[64];
	snprintf(lost, sizeof(lost), "%" PRIu64 ":%" PRIu64, epoch_of(cursor), seq_of(cursor) + 1);
	json_t *reply = call(&daemon, "{\"op\":\"events\",\"after\":\"%s\",\"wait\":5}", lost);
	ck_assert_str_eq(wire_error_code(reply), "cursor_expired");
	const char *oldest = json_string_value(json_object_get(reply, "oldest"));
	ck_assert_ptr_nonnull(oldest);
	ck_assert_uint_eq(epoch_of(oldest), epoch_of(cursor));
	ck_assert_uint_gt(seq_of(oldest), seq_of(cursor));
	/* From the oldest cursor on, the reader gets this run's events. */
	char from[64];
	snprintf(from, sizeof(from), "%s", oldest);
	json_decref(reply);
	json_int_t id = run_echo(&daemon);
	char end[64], states[64];
	json_t *events = read_all(&daemon, from, end);
	states_of(events, id, states, sizeof(states));
	ck_assert_str_eq(states, "queued,running,done");
	ck_assert_int_eq(json_array_size(events), 3);
	json_decref(events);
	/* A cursor no run gave is refused as one. */
	reply = call(&daemon, "{\"op\":\"events\",\"after\":\"%" PRIu64 ":%" PRIu64 "\"}",
	             epoch_of(cursor), seq_of(end) + 1000);
	ck_assert_str_eq(wire_error_code(reply), "bad_field");
	json_decref(reply);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(the_store_keeps_the_rings_bounds)
{
	struct store store;
	const char *small[] = {"--events-max", "10", NULL};
	store_make(&store, small);
	fixture daemon;
	fixture_start(&daemon, store.args);
	for (int i = 0; i < 8; i++)
		run_echo(&daemon);
	char cursor[64];
	json_t *held = read_all(&daemon, NULL, cursor);
	ck_assert_int_eq(json_array_size(held), 10);
	char oldest[64];
	snprintf(oldest, sizeof(oldest), "%s",
	         json_string_value(json_object_get(json_array_get(held, 0), "cursor")));
	json_decref(held);
	barrier(&daemon);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	/* The same ten are back, and a cursor before them is still expired. */
	char again[64];
	held = read_all(&daemon, NULL, again);
	ck_assert_int_eq(json_array_size(held), 10);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(held, 0), "cursor")),
	                 oldest);
	json_decref(held);
	json_t *reply = call(&daemon, "{\"op\":\"events\",\"after\":\"%" PRIu64 ":1\"}",
	                     epoch_of(cursor));
	ck_assert_str_eq(wire_error_code(reply), "cursor_expired");
	json_decref(reply);
	json_t *stats = call(&daemon, "{\"op\":\"stats\"}");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(stats, "events"), "held")),
	                 10);
	json_decref(stats);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(without_a_journal_a_restart_expires_the_cursor)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	run_echo(&daemon);
	char cursor[64];
	json_decref(read_all(&daemon, NULL, cursor));
	fixture_stop(&daemon);
	fixture_start(&daemon, NULL);
	json_t *reply = call(&daemon, "{\"op\":\"events\",\"after\":\"%s\"}", cursor);
	ck_assert_str_eq(wire_error_code(reply), "cursor_expired");
	ck_assert_ptr_nonnull(json_object_get(reply, "oldest"));
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

/* ------------------------------------- the feed is kept once it is read */

/* stats's journal object (a new reference). */
static json_t *journal_stats_of(const fixture *daemon)
{
	json_t *stats = call(daemon, "{\"op\":\"stats\"}");
	json_t *journal = json_incref(json_object_get(stats, "journal"));
	ck_assert_ptr_nonnull(journal);
	json_decref(stats);
	return journal;
}

static json_int_t events_written(const fixture *daemon)
{
	json_t *journal = journal_stats_of(daemon);
	json_int_t written = json_integer_value(json_object_get(journal, "events"));
	json_decref(journal);
	return written;
}

static bool events_kept(const fixture *daemon)
{
	json_t *journal = journal_stats_of(daemon);
	json_t *kept = json_object_get(journal, "events_kept");
	ck_assert_msg(json_is_boolean(kept), "stats has no journal.events_kept");
	bool on = json_is_true(kept);
	json_decref(journal);
	return on;
}

/* Whether list holds an event with this cursor. */
static bool has_cursor(const json_t *list, const char *cursor)
{
	size_t i;
	json_t *event;
	json_array_foreach(list, i, event) {
		if (strcmp(json_string_value(json_object_get(event, "cursor")), cursor) == 0)
			return true;
	}
	return false;
}

START_TEST(a_feed_nobody_read_is_not_written_and_reads_after_a_restart)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_int_t old = run_echo(&daemon);
	run_echo(&daemon);
	barrier(&daemon);
	ck_assert_int_eq(events_written(&daemon), 0);
	ck_assert(!events_kept(&daemon));
	json_t *stats = call(&daemon, "{\"op\":\"stats\"}");
	uint64_t epoch = (uint64_t)json_integer_value(
		json_object_get(json_object_get(stats, "events"), "epoch"));
	json_decref(stats);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	ck_assert(!events_kept(&daemon));
	/* The first read works and shows this run's events only (the store
	 * kept none of the run before). */
	json_int_t id = run_echo(&daemon);
	char cursor[64], states[64];
	json_t *events = read_all(&daemon, NULL, cursor);
	states_of(events, id, states, sizeof(states));
	ck_assert_str_eq(states, "queued,running,done");
	states_of(events, old, states, sizeof(states));
	ck_assert_str_eq(states, "");
	json_decref(events);
	ck_assert(events_kept(&daemon));
	/* A cursor into the run that kept nothing fails closed. */
	json_t *reply = call(&daemon, "{\"op\":\"events\",\"after\":\"%" PRIu64 ":3\"}", epoch);
	ck_assert_str_eq(wire_error_code(reply), "cursor_expired");
	ck_assert_ptr_nonnull(json_object_get(reply, "oldest"));
	json_decref(reply);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(a_cursor_of_the_first_read_survives_a_kill_9)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	for (int i = 0; i < 5; i++)
		run_echo(&daemon);
	/* Jobs that are still running while the first read is made. */
	enum { RUNNING = 12 };
	json_int_t ids[RUNNING];
	for (int i = 0; i < RUNNING; i++) {
		json_t *reply = call(&daemon, "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":"
		                              "[\"sleep\",\"0.%d\"]}}", 1 + i % 3);
		ids[i] = json_integer_value(json_object_get(reply, "id"));
		ck_assert_msg(ids[i] > 0, "submit: %s", wire_error_code(reply));
		json_decref(reply);
	}
	ck_assert(!events_kept(&daemon));
	json_t *reply = call(&daemon, "{\"op\":\"events\",\"limit\":20}");
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", wire_error_code(reply));
	char first[64];
	snprintf(first, sizeof(first), "%s", json_string_value(json_object_get(reply, "cursor")));
	json_t *shown = json_incref(json_object_get(reply, "events"));
	ck_assert_int_eq(json_array_size(shown), 20);
	json_decref(reply);
	ck_assert(events_kept(&daemon));
	/* Every job ends, then what came after the first cursor is read, and
	 * committed (the barrier), and weftd is killed. */
	char ids_text[256] = "";
	for (int i = 0; i < RUNNING; i++)
		snprintf(ids_text + strlen(ids_text), sizeof(ids_text) - strlen(ids_text), "%s%lld",
		         i > 0 ? "," : "", (long long)ids[i]);
	json_decref(call(&daemon, "{\"op\":\"wait\",\"ids\":[%s],\"timeout\":30}", ids_text));
	char end[64];
	json_t *before = read_all(&daemon, first, end);
	ck_assert_int_gt(json_array_size(before), 0);
	barrier(&daemon);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	ck_assert(events_kept(&daemon));
	/* The first read's events are kept, and after its cursor come the very
	 * events the run before showed, nothing missing. */
	char again[64];
	json_t *all = read_all(&daemon, NULL, again);
	size_t i;
	json_t *event;
	json_array_foreach(shown, i, event) {
		const char *cursor = json_string_value(json_object_get(event, "cursor"));
		ck_assert_msg(has_cursor(all, cursor), "event %s of the first read was lost", cursor);
	}
	json_decref(all);
	json_t *after = read_all(&daemon, first, again);
	ck_assert_int_eq(json_array_size(after), json_array_size(before));
	json_array_foreach(before, i, event) {
		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(after, i), "cursor")),
		                 json_string_value(json_object_get(event, "cursor")));
		ck_assert_str_eq(json_string_value(json_object_get(json_array_get(after, i), "state")),
		                 json_string_value(json_object_get(event, "state")));
	}
	for (int j = 0; j < RUNNING; j++) {
		char states[64];
		json_t *every = json_array();
		json_array_extend(every, shown);
		json_array_extend(every, after);
		states_of(every, ids[j], states, sizeof(states));
		ck_assert_msg(strcmp(states, "queued,running,done") == 0, "job %lld: %s",
		              (long long)ids[j], states);
		json_decref(every);
	}
	json_decref(after);
	json_decref(before);
	json_decref(shown);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(keeping_stays_on_across_a_restart)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_decref(call(&daemon, "{\"op\":\"events\",\"filter\":{\"type\":\"queue\"}}"));
	run_echo(&daemon);
	barrier(&daemon);
	ck_assert_int_ge(events_written(&daemon), 3);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	/* Before anybody reads in this run. */
	ck_assert(events_kept(&daemon));
	run_echo(&daemon);
	barrier(&daemon);
	ck_assert_int_ge(events_written(&daemon), 3);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

/* ---------------------------------------------------------- other users */

static struct user alice, bob;
static char sender[PATH_MAX];
static char skip_reason[256];

static json_t *call_as(const struct user *user, const fixture *daemon, const char *request)
{
	json_t *reply = as_user_call(user, sender, daemon->url, request);
	ck_assert_msg(reply != NULL, "no reply to %s for %s", request, user->name);
	return reply;
}

START_TEST(each_user_still_sees_only_their_own_events_after_a_restart)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	ck_assert_int_eq(chmod(daemon.directory, 0755), 0);
	run_echo(&daemon); /* root's: bob's cursor is past them */
	json_t *reply = call_as(&bob, &daemon, "{\"op\":\"events\"}");
	char bobs[64];
	snprintf(bobs, sizeof(bobs), "%s", json_string_value(json_object_get(reply, "cursor")));
	json_decref(reply);
	reply = call_as(&alice, &daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
	                                 "\"wait\":10}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	ck_assert_int_gt(id, 0);
	json_decref(reply);
	barrier(&daemon);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	ck_assert_int_eq(chmod(daemon.directory, 0755), 0);
	/* Bob's cursor is good and shows none of alice's events... */
	char request[160];
	snprintf(request, sizeof(request), "{\"op\":\"events\",\"after\":\"%s\"}", bobs);
	reply = call_as(&bob, &daemon, request);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", wire_error_code(reply));
	ck_assert_int_eq(json_array_size(json_object_get(reply, "events")), 0);
	json_decref(reply);
	/* ...alice sees her own, kept in her lane, and root all of them. */
	char states[64];
	reply = call_as(&alice, &daemon, request);
	states_of(json_object_get(reply, "events"), id, states, sizeof(states));
	ck_assert_str_eq(states, "queued,running,done");
	json_decref(reply);
	reply = call(&daemon, "{\"op\":\"events\",\"after\":\"%s\"}", bobs);
	states_of(json_object_get(reply, "events"), id, states, sizeof(states));
	ck_assert_str_eq(states, "queued,running,done");
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_array_get(json_object_get(reply, "events"), 0), "owner")),
	                 (json_int_t)alice.uid);
	json_decref(reply);
	reply = call_as(&alice, &daemon, "{\"op\":\"stats\"}");
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(json_object_get(reply, "events"), "yours"), "held")),
	                 3);
	json_decref(reply);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

static void prepare_users(void)
{
	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "not root: needs throwaway users");
		return;
	}
	if (as_user_shell("command -v useradd && command -v userdel") != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "useradd/userdel are not installed");
		return;
	}
	const char *build = getenv("WEFT_BUILD");
	if (build == NULL) {
		snprintf(skip_reason, sizeof(skip_reason), "WEFT_BUILD is unset (make check sets it)");
		return;
	}
	snprintf(sender, sizeof(sender), "%s/tests/helpers/wire_send", build);
	if (!as_user_create(&alice, "wea") || !as_user_create(&bob, "web"))
		snprintf(skip_reason, sizeof(skip_reason), "useradd failed");
}

int main(void)
{
	/* Other users must reach the fixture's socket: keep it under /tmp. */
	setenv("TMPDIR", "/tmp", 1);
	prepare_users();
	Suite *suite = suite_create("events across restarts");
	TCase *restart = tcase_create("restart");
	tcase_set_timeout(restart, 90);
	tcase_add_test(restart, a_cursor_stays_good_across_a_stop);
	tcase_add_test(restart, events_read_before_a_kill_9_are_kept);
	tcase_add_test(restart, replays_interrupted_events_come_after_the_cursor);
	tcase_add_test(restart, a_cursor_past_what_the_store_kept_is_expired_with_the_oldest);
	tcase_add_test(restart, the_store_keeps_the_rings_bounds);
	tcase_add_test(restart, without_a_journal_a_restart_expires_the_cursor);
	tcase_add_test(restart, a_feed_nobody_read_is_not_written_and_reads_after_a_restart);
	tcase_add_test(restart, a_cursor_of_the_first_read_survives_a_kill_9);
	tcase_add_test(restart, keeping_stays_on_across_a_restart);
	suite_add_tcase(suite, restart);
	TCase *users = tcase_create("other users");
	tcase_set_timeout(users, 90);
	if (skip_reason[0] == '\0')
		tcase_add_test(users, each_user_still_sees_only_their_own_events_after_a_restart);
	else
		as_user_skip(1, "event test with other users across a restart", skip_reason);
	suite_add_tcase(suite, users);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	as_user_remove(&alice);
	as_user_remove(&bob);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
