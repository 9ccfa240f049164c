/*
 * Fair share between local users (issue 10), tried as they would: a root
 * weftd and two throwaway users (useradd) who submit through
 * tests/helpers/wire_send with their own credentials. User A floods; user B
 * must still be served, and A's quotas must not limit B. Assertions use the
 * jobs' own timestamps and the daemon's counters, never the test's clock.
 *
 * Needs root (to make users and run weftd as the system daemon): otherwise
 * every test is skipped, and the program says so and how many.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/as_user.h"
#include "tests/fixture.h"
#include "tests/wire.h"

static struct user user_a, user_b;
static char sender[PATH_MAX];
static char skip_reason[256];
static fixture weftd;




/* Sends `request` as `user` and returns the parsed reply (new reference). */
static json_t *call_as(const struct user *user, const char *request)
{
	static char buffer[1 << 20];
	char *argv[] = {sender, weftd.url, (char *)request, NULL};
	int status = as_user_run(user->uid, user->gid, sender, argv, buffer, sizeof(buffer));
	ck_assert_msg(status == 0, "wire_send as %s failed (status %d): %s", user->name, status,
	              buffer);
	json_t *reply = json_loads(buffer, 0, NULL);
	ck_assert_msg(reply != NULL, "not JSON: %s", buffer);
	return reply;
}

static void start(const char *const *args)
{
	fixture_start(&weftd, args);
	ck_assert_int_eq(chmod(weftd.directory, 0755), 0);
}

/* The job as the daemon shows it (root may see every job): new reference. */
static json_t *job_of(json_int_t id)
{
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"status\",\"id\":%lld}", (long long)id);
	json_t *reply = wire_call(weftd.url, request);
	ck_assert_ptr_nonnull(reply);
	json_t *job = json_incref(json_object_get(reply, "job"));
	json_decref(reply);
	ck_assert_ptr_nonnull(job);
	return job;
}

static const char *state_of(json_int_t id)
{
	static char state[32];
	json_t *job = job_of(id);
	snprintf(state, sizeof(state), "%s", json_string_value(json_object_get(job, "state")));
	json_decref(job);
	return state;
}

static double time_of(json_int_t id, const char *which)
{
	json_t *job = job_of(id);
	json_t *value = json_object_get(job, which);
	ck_assert_msg(json_is_number(value), "job %lld has no %s", (long long)id, which);
	double seconds = json_number_value(value);
	json_decref(job);
	return seconds;
}

/* Polls until job id is in `state`; a generous hang guard fails the test. */
static void wait_for_state(json_int_t id, const char *state)
{
	double deadline = fixture_now() + 60;
	while (strcmp(state_of(id), state) != 0) {
		ck_assert_msg(fixture_now() < deadline, "job %lld never became %s (is %s)",
		              (long long)id, state, state_of(id));
		usleep(2000);
	}
}

static json_int_t submit_id(const struct user *user, const char *request)
{
	json_t *reply = call_as(user, request);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "refused: %s",
	              json_dumps(reply, 0));
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	return id;
}

/*
 * --procs 1. A's long job holds the only exec slot while A queues 100,000
 * more; then B queues one. When A's long job is cancelled, the slot goes to
 * A's next job, then to B's -- not after A's 100,000. On the old gate (one
 * FIFO) B's job started after all of A's.
 */
START_TEST(a_single_job_of_b_starts_while_a_has_100000_queued)
{
	enum { A_JOBS = 100000, PER_BATCH = 2500 };
	static const char *const args[] = {"--procs", "1", "--max-message", "16777216", NULL};
	start(args);
	json_int_t blocker = submit_id(&user_a, "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":"
	                                        "{\"argv\":[\"sleep\",\"3600\"]}}");
	wait_for_state(blocker, "running");

	static char batch[PER_BATCH * 48 + 64];
	json_int_t first_a = 0;
	for (int sent = 0; sent < A_JOBS; sent += PER_BATCH) {
		size_t used = (size_t)snprintf(batch, sizeof(batch), "{\"op\":\"submit\",\"jobs\":[");
		for (int i = 0; i < PER_BATCH; i++)
			used += (size_t)snprintf(batch + used, sizeof(batch) - used, "%s%s",
			                         i > 0 ? "," : "",
			                         "{\"fn\":\"exec\",\"args\":{\"argv\":[\"true\"]}}");
		snprintf(batch + used, sizeof(batch) - used, "]}");
		json_t *reply = call_as(&user_a, batch);
		json_t *ids = json_object_get(reply, "ids");
		ck_assert_msg(json_array_size(ids) == PER_BATCH, "batch refused: %.300s",
		              json_dumps(reply, 0));
		if (first_a == 0)
			first_a = json_integer_value(json_array_get(ids, 0));
		json_decref(reply);
	}
	json_t *stats = wire_call(weftd.url, "{\"op\":\"stats\"}");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(stats, "procs"),
	                                                    "queued")),
	                 A_JOBS);
	json_decref(stats);

	json_int_t b_job = submit_id(&user_b, "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":"
	                                      "{\"argv\":[\"true\"]}}");
	char cancel[96];
	snprintf(cancel, sizeof(cancel), "{\"op\":\"cancel\",\"id\":%lld}", (long long)blocker);
	json_decref(wire_call(weftd.url, cancel));
	wait_for_state(b_job, "done");

	double blocker_end = time_of(blocker, "finished");
	double b_started = time_of(b_job, "started");
	double b_finished = time_of(b_job, "finished");
	/* A's next job had the slot first (A was waiting first), then B's; A's
	 * second started only after B's had finished. */
	ck_assert_double_le(time_of(first_a, "started"), b_started);
	wait_for_state(first_a + 1, "done");
	ck_assert_double_ge(time_of(first_a + 1, "started"), b_finished);
	printf("fairshare: B's job started %.1f ms after the slot was freed, with %d of A's "
	       "jobs queued\n",
	       (b_started - blocker_end) * 1000, A_JOBS);
	fixture_stop(&weftd);
}
END_TEST

/* --max-pending-per-user 3: A's fourth submit is `busy` naming the option
 * and A's uid; B's submits are not limited by A's use. */
START_TEST(a_users_pending_quota_does_not_limit_another)
{
	static const char *const args[] = {"--procs", "1", "--max-pending-per-user", "3", NULL};
	start(args);
	static const char sleeper[] =
		"{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"sleep\",\"3600\"]}}";
	for (int i = 0; i < 3; i++)
		submit_id(&user_a, sleeper);
	json_t *reply = call_as(&user_a, sleeper);
	ck_assert_str_eq(wire_error_code(reply), "busy");
	const char *message =
		json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
	char uid[32];
	snprintf(uid, sizeof(uid), "uid %u", (unsigned)user_a.uid);
	ck_assert_msg(strstr(message, "--max-pending-per-user") != NULL && strstr(message, uid),
	              "%s", message);
	json_decref(reply);
	for (int i = 0; i < 3; i++)
		submit_id(&user_b, sleeper);
	/* A's count comes back when a job ends: cancel one, and A may submit again. */
	json_decref(call_as(&user_a, "{\"op\":\"cancel\",\"id\":1}"));
	submit_id(&user_a, sleeper);
	fixture_stop(&weftd);
}
END_TEST

/* --max-waiters-per-user 1: while A's long poll waits, A's second is `busy`
 * naming --max-waiters-per-user; B may still wait. */
START_TEST(a_users_waiter_quota_does_not_limit_another)
{
	static const char *const args[] = {"--max-waiters-per-user", "1", NULL};
	start(args);
	json_int_t a_job = submit_id(&user_a, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":"
	                                      "{\"seconds\":3600}}");
	char request[128];
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld,\"timeout\":3600}",
	         (long long)a_job);
	pid_t poller = fork();
	ck_assert_int_ge(poller, 0);
	if (poller == 0) {
		static char out[4096];
		char *argv[] = {sender, weftd.url, request, NULL};
		_exit(as_user_run(user_a.uid, user_a.gid, sender, argv, out, sizeof(out)));
	}
	double deadline = fixture_now() + 30;
	while (wire_waiters_now(weftd.url) < 1) {
		ck_assert_msg(fixture_now() < deadline, "A's long poll never started waiting");
		usleep(2000);
	}
	json_t *reply = call_as(&user_a, request);
	ck_assert_str_eq(wire_error_code(reply), "busy");
	ck_assert(strstr(json_string_value(json_object_get(json_object_get(reply, "error"),
	                                                   "message")),
	                 "--max-waiters-per-user") != NULL);
	json_decref(reply);
	json_int_t b_job = submit_id(&user_b, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":"
	                                      "{\"seconds\":3600}}");
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld,\"timeout\":0.05}",
	         (long long)b_job);
	reply = call_as(&user_b, request);
	ck_assert_str_eq(wire_error_code(reply), "timeout"); /* it waited: not refused */
	json_decref(reply);
	kill(poller, SIGKILL);
	waitpid(poller, NULL, 0);
	fixture_stop(&weftd);
}
END_TEST

/* An exec job whose args take about 30,000 bytes, sleeping until cancelled. */
static const char *padded_sleeper(void)
{
	static char request[32768];
	int length = snprintf(request, sizeof(request),
	                      "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":"
	                      "[\"sleep\",\"3600\"],\"env\":{\"PAD\":\"");
	memset(request + length, 'x', 30000);
	snprintf(request + length + 30000, sizeof(request) - (size_t)length - 30000, "\"}}}");
	return request;
}

static const char *error_message_of(const json_t *reply)
{
	return json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
}

/*
 * --max-bytes-per-user 65536 and --max-bytes 100000, with jobs of ~30 KB of
 * args: A's third is `busy` naming --max-bytes-per-user and A; B's second is
 * `busy` naming --max-bytes (the daemon holds 90 KB); once one of A's jobs
 * is cancelled, B's goes in, and the cancelled job is dropped to make room.
 */
START_TEST(the_byte_budgets_refuse_past_a_users_share_and_the_daemons)
{
	static const char *const args[] = {"--procs", "8", "--max-bytes-per-user", "65536",
	                                   "--max-bytes", "100000", NULL};
	start(args);
	json_int_t a_first = submit_id(&user_a, padded_sleeper());
	submit_id(&user_a, padded_sleeper());
	json_t *reply = call_as(&user_a, padded_sleeper());
	ck_assert_str_eq(wire_error_code(reply), "busy");
	char uid[32];
	snprintf(uid, sizeof(uid), "uid %u", (unsigned)user_a.uid);
	ck_assert_msg(strstr(error_message_of(reply), "--max-bytes-per-user") != NULL &&
	                      strstr(error_message_of(reply), uid) != NULL,
	              "%s", error_message_of(reply));
	json_decref(reply);
	submit_id(&user_b, padded_sleeper());
	reply = call_as(&user_b, padded_sleeper());
	ck_assert_str_eq(wire_error_code(reply), "busy");
	ck_assert_msg(strstr(error_message_of(reply), "(--max-bytes)") != NULL, "%s",
	              error_message_of(reply));
	json_decref(reply);
	char cancel[64];
	snprintf(cancel, sizeof(cancel), "{\"op\":\"cancel\",\"id\":%lld}", (long long)a_first);
	json_decref(call_as(&user_a, cancel));
	wait_for_state(a_first, "cancelled");
	submit_id(&user_b, padded_sleeper());
	char status[64];
	snprintf(status, sizeof(status), "{\"op\":\"status\",\"id\":%lld}", (long long)a_first);
	reply = wire_call(weftd.url, status);
	ck_assert_str_eq(wire_error_code(reply), "unknown_id");
	json_decref(reply);
	fixture_stop(&weftd);
}
END_TEST

/* A's quotas.yours.bytes in stats. */
static json_int_t bytes_held_by_a(void)
{
	json_t *reply = call_as(&user_a, "{\"op\":\"stats\"}");
	json_int_t bytes = json_integer_value(
		json_object_get(json_object_get(json_object_get(reply, "quotas"), "yours"), "bytes"));
	json_decref(reply);
	return bytes;
}

/*
 * A wait holds memory for each id it waits on; it is charged to the caller's
 * byte budget while it waits. With --max-bytes-per-user 65536 and 1,500 of
 * A's jobs: a FIRST_COMPLETED wait (a watch per job, ~40 bytes an id) is
 * `busy` naming the budget; an ALL_COMPLETED wait (8 bytes an id, one
 * watch) fits; and once the waits are over A holds what A held before.
 */
START_TEST(a_wait_is_charged_to_its_users_byte_budget)
{
	static const char *const args[] = {"--max-bytes-per-user", "65536", NULL};
	start(args);
	enum { JOBS = 1500 };
	static char text[128 * 1024];
	strcpy(text, "{\"op\":\"submit\",\"jobs\":[");
	for (int i = 0; i < JOBS; i++)
		strcat(text, i == 0 ? "{\"fn\":\"sleep\",\"args\":{\"seconds\":3600}}"
		                    : ",{\"fn\":\"sleep\",\"args\":{\"seconds\":3600}}");
	strcat(text, "]}");
	json_t *reply = call_as(&user_a, text);
	json_t *ids = json_object_get(reply, "ids");
	ck_assert_msg(json_array_size(ids) == JOBS, "%s", wire_error_code(reply));
	char *list = json_dumps(ids, JSON_COMPACT);
	json_decref(reply);
	json_int_t before = bytes_held_by_a();
	snprintf(text, sizeof(text),
	         "{\"op\":\"wait\",\"return_when\":\"FIRST_COMPLETED\",\"timeout\":0.05,"
	         "\"ids\":%s}",
	         list);
	reply = call_as(&user_a, text);
	ck_assert_str_eq(wire_error_code(reply), "busy");
	ck_assert_msg(strstr(error_message_of(reply), "--max-bytes-per-user") != NULL, "%s",
	              error_message_of(reply));
	json_decref(reply);
	snprintf(text, sizeof(text), "{\"op\":\"wait\",\"timeout\":0.05,\"ids\":%s}", list);
	reply = call_as(&user_a, text);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", error_message_of(reply));
	ck_assert_int_eq(json_array_size(json_object_get(reply, "pending")), JOBS);
	json_decref(reply);
	/* The waiter's charge goes when its last reference does, just after the reply. */
	double give_up = fixture_now() + 10;
	while (bytes_held_by_a() != before)
		ck_assert_msg(fixture_now() < give_up, "A holds %lld bytes, held %lld",
		              (long long)bytes_held_by_a(), (long long)before);
	free(list);
	fixture_stop(&weftd);
}
END_TEST

/*
 * Requests are taken in turn between users, and one user's never hold every
 * request thread (server.c, "Request threads"). Root (the test) sends HOLDS
 * submits of debug.hold, each of which holds the request thread that takes
 * it until a FIFO is closed: root's share of the threads is held and the
 * rest of its requests queue. B is still answered: its stats show root's
 * share running and the rest queued, and its submit with wait comes back
 * done while root's holds still hold. Handled on nng's callback threads in
 * arrival order, as before, B's requests waited for the FIFO.
 */
START_TEST(a_request_of_b_is_answered_while_a_holds_its_share_of_the_request_threads)
{
	enum { HOLDS = 40, BIG = 24, BIG_BYTES = 60000 };
	static const char *const args[] = {"--test-hooks", "--max-message", "65536", NULL};
	start(args);
	char fifo[PATH_MAX], text[PATH_MAX + 128];
	snprintf(fifo, sizeof(fifo), "%s/hold.fifo", weftd.directory);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	snprintf(text, sizeof(text),
	         "{\"op\":\"submit\",\"fn\":\"debug.hold\",\"args\":{\"fifo\":\"%s\"},"
	         "\"wait\":600}",
	         fifo);
	nng_socket sockets[HOLDS];
	bool answered[HOLDS] = {false};
	for (int i = 0; i < HOLDS; i++) {
		ck_assert_int_eq(nng_req0_open(&sockets[i]), 0);
		nng_socket_set_ms(sockets[i], NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		ck_assert_int_eq(nng_dial(sockets[i], weftd.url, NULL, 0), 0);
		ck_assert_int_eq(nng_send(sockets[i], text, strlen(text), 0), 0);
	}
	/* B's stats: root's share running, B's own stats too, root's rest queued. */
	json_int_t root_share = 0;
	double deadline = fixture_now() + 60;
	for (;;) {
		json_t *stats = call_as(&user_b, "{\"op\":\"stats\"}");
		json_t *requests = json_object_get(stats, "requests");
		json_int_t share = json_integer_value(json_object_get(requests, "share"));
		json_int_t running = json_integer_value(json_object_get(requests, "running"));
		json_int_t queued = json_integer_value(json_object_get(requests, "queued"));
		json_decref(stats);
		ck_assert_msg(share >= 1 && share < HOLDS, "share %lld", (long long)share);
		root_share = share;
		if (running == share + 1 && queued == HOLDS - share)
			break;
		ck_assert_msg(fixture_now() < deadline,
		              "root's holds never filled its share: %lld running, %lld queued, "
		              "share %lld",
		              (long long)running, (long long)queued, (long long)share);
		usleep(2000);
	}
	json_t *reply =
		call_as(&user_b, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":7},"
		                 "\"wait\":60}");
	ck_assert_msg(json_integer_value(json_object_get(reply, "result")) == 7, "%s",
	              json_dumps(reply, 0));
	json_decref(reply);
	/* Root pipelines BIG large requests behind its queued holds. The queue
	 * takes 4 x the transport's 4 x 65,536 bytes of one user's: those past
	 * that are answered busy at once, the others wait their turn. Once every
	 * one is either queued or refused (B's stats), the queued ones fit the
	 * budget and one more would not have. */
	static char big[BIG_BYTES + 64];
	snprintf(big, sizeof(big), "{\"op\":\"ping\",\"pad\":\"%0*d\"}", BIG_BYTES, 0);
	size_t big_length = strlen(big);
	nng_socket big_sockets[BIG];
	for (int i = 0; i < BIG; i++) {
		ck_assert_int_eq(nng_req0_open(&big_sockets[i]), 0);
		nng_socket_set_ms(big_sockets[i], NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		ck_assert_int_eq(nng_dial(big_sockets[i], weftd.url, NULL, 0), 0);
		ck_assert_int_eq(nng_send(big_sockets[i], big, big_length, 0), 0);
	}
	json_int_t queued_bigs, refused;
	deadline = fixture_now() + 60;
	for (;;) {
		reply = call_as(&user_b, "{\"op\":\"stats\"}");
		json_t *requests = json_object_get(reply, "requests");
		queued_bigs = json_integer_value(json_object_get(requests, "queued")) -
		              (HOLDS - root_share);
		refused = json_integer_value(json_object_get(requests, "refused"));
		json_decref(reply);
		if (queued_bigs + refused == BIG)
			break;
		ck_assert_msg(fixture_now() < deadline, "%lld large requests queued, %lld refused",
		              (long long)queued_bigs, (long long)refused);
		usleep(2000);
	}
	const size_t budget = 4 * 4 * 65536, hold_bytes = strlen(text);
	size_t queued_bytes = (size_t)(HOLDS - root_share) * hold_bytes;
	ck_assert_int_ge(refused, 1);
	ck_assert_uint_le(queued_bytes + (size_t)queued_bigs * big_length, budget);
	ck_assert_uint_gt(queued_bytes + (size_t)(queued_bigs + 1) * big_length, budget);
	bool refused_answered[BIG] = {false};
	for (int i = 0; i < BIG; i++) {
		char *buffer;
		size_t length;
		if (nng_recv(big_sockets[i], &buffer, &length, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK) != 0)
			continue;
		json_t *answer = json_loadb(buffer, length, 0, NULL);
		nng_free(buffer, length);
		ck_assert_str_eq(wire_error_code(answer), "busy");
		ck_assert_msg(strstr(error_message_of(answer), "waiting to be handled") != NULL, "%s",
		              error_message_of(answer));
		json_decref(answer);
		refused_answered[i] = true;
	}
	/* Every open and close of the FIFO's writing end lets go of the holds
	 * that have it open; the next ones then open it in turn. */
	int count = 0;
	deadline = fixture_now() + 120;
	while (count < HOLDS) {
		int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		ck_assert_msg(fd >= 0 || errno == ENXIO, "open %s: %s", fifo, strerror(errno));
		if (fd >= 0)
			close(fd);
		for (int i = 0; i < HOLDS; i++) {
			char *buffer;
			size_t length;
			if (answered[i] ||
			    nng_recv(sockets[i], &buffer, &length, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK) != 0)
				continue;
			json_t *done = json_loadb(buffer, length, 0, NULL);
			nng_free(buffer, length);
			ck_assert_msg(json_is_true(json_object_get(done, "result")),
			              "a hold ended as %s", json_dumps(done, 0));
			json_decref(done);
			answered[i] = true;
			count++;
		}
		ck_assert_msg(fixture_now() < deadline, "%d of %d holds answered", count, HOLDS);
		struct pollfd none = {-1, 0, 0};
		poll(&none, 0, 1); /* a millisecond for the next holds to open the FIFO */
	}
	/* The guard's pings (root's, like the holds) were answered all along:
	 * it never took the listener for stuck. */
	json_t *stats = call_as(&user_b, "{\"op\":\"stats\"}");
	json_t *guard = json_object_get(json_object_get(stats, "housekeeping"), "listener_guard");
	ck_assert_msg(json_integer_value(json_object_get(guard, "recreated")) == 0, "%s",
	              json_dumps(guard, 0));
	json_decref(stats);
	/* The large requests that were queued were handled in their turn (a
	 * ping takes no field 'pad': they are answered with that error). */
	int answered_later = 0;
	for (int i = 0; i < BIG; i++) {
		if (refused_answered[i])
			continue;
		char *buffer;
		size_t length;
		nng_socket_set_ms(big_sockets[i], NNG_OPT_RECVTIMEO, 60000);
		ck_assert_int_eq(nng_recv(big_sockets[i], &buffer, &length, NNG_FLAG_ALLOC), 0);
		json_t *answer = json_loadb(buffer, length, 0, NULL);
		nng_free(buffer, length);
		ck_assert_ptr_nonnull(answer);
		const char *code = wire_error_code(answer);
		bool busy = code != NULL && strcmp(code, "busy") == 0;
		json_decref(answer);
		if (busy)
			continue; /* refused: its reply came after the look above */
		answered_later++;
	}
	ck_assert_int_eq(answered_later, queued_bigs);
	for (int i = 0; i < BIG; i++)
		nng_close(big_sockets[i]);
	for (int i = 0; i < HOLDS; i++)
		nng_close(sockets[i]);
	unlink(fifo);
	fixture_stop(&weftd);
}
END_TEST

static void prepare(void)
{
	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason),
		         "not root: these tests make throwaway users and run weftd as root");
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
	if (!as_user_create(&user_a, "wfa") || !as_user_create(&user_b, "wfb"))
		snprintf(skip_reason, sizeof(skip_reason), "useradd failed");
}

int main(void)
{
	/* Other users must reach the fixture's socket: keep it under /tmp. */
	setenv("TMPDIR", "/tmp", 1);
	prepare();
	Suite *suite = suite_create("fairshare");
	TCase *as_users = tcase_create("as users");
	tcase_set_timeout(as_users, 240);
	const TTest *tests[] = {
		a_single_job_of_b_starts_while_a_has_100000_queued,
		a_users_pending_quota_does_not_limit_another,
		a_users_waiter_quota_does_not_limit_another,
		the_byte_budgets_refuse_past_a_users_share_and_the_daemons,
		a_wait_is_charged_to_its_users_byte_budget,
		a_request_of_b_is_answered_while_a_holds_its_share_of_the_request_threads,
	};
	size_t count = sizeof(tests) / sizeof(tests[0]);
	for (size_t i = 0; i < count; i++)
		tcase_add_test(as_users, tests[i]);
	suite_add_tcase(suite, as_users);
	int failed = 0;
	if (skip_reason[0] != '\0') {
		as_user_skip((int)count, "fair-share tests", skip_reason);
		srunner_free(srunner_create(suite));
	} else {
		SRunner *runner = srunner_create(suite);
		srunner_run_all(runner, CK_NORMAL);
		failed = srunner_ntests_failed(runner);
		srunner_free(runner);
	}
	as_user_remove(&user_a);
	as_user_remove(&user_b);
	return failed == 0 ? 0 : 1;
}
