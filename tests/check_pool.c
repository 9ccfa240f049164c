/*
 * The IO built-ins' connection pools (pool.c) and name lookups (resolve.c),
 * called directly on a private event_base with a fake kind of connection:
 * order of waiting calls, the per-key maximum, owners kept apart, idle
 * connections closed, counters, and lookups answered after resolve_start;
 * against the tests' DNS server (tests/dns_server.c): every address of a
 * name, in order and bounded, and the pool trying them in turn.
 */
#include <check.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/base/now.h"
#include "daemon/executors/io/pool.h"
#include "daemon/executors/io/resolve.h"
#include "tests/dns_server.h"
#include "weft/error.h"

struct fake_conn {
	struct pool_conn pc;
	int id;
};

struct fake_call {
	struct pool_call pc;
	int id;
	struct fake_conn *conn; /* what served it */
	bool fresh;             /* on a connection opened for it */
	char address[RESOLVE_ADDRESS_SIZE]; /* the one it was handed last */
	char tried[RESOLVE_ADDRESSES_MAX][RESOLVE_ADDRESS_SIZE]; /* connected to, in order */
	size_t tries;
	char failure[1024]; /* why it ended without a connection, or "" */
};

/* Addresses the fake kind's connect fails at once on ("refused"), and one it
 * never completes a connect to (it hangs). */
static const char *refusing[4];
static const char *hanging;

static int opened_ids;
static int served_order[16], served_count;

static void serve(struct fake_call *call, struct fake_conn *conn, bool fresh)
{
	call->conn = conn;
	call->fresh = fresh;
	served_order[served_count++] = call->id;
}

static void fake_reuse(struct pool_call *pc, struct pool_conn *conn)
{
	serve(POOL_OWNER(pc, struct fake_call, pc), POOL_OWNER(conn, struct fake_conn, pc), false);
}

static void fake_open(struct pool *pool, struct pool_call *pc)
{
	struct fake_call *call = POOL_OWNER(pc, struct fake_call, pc);
	if (call->tries < RESOLVE_ADDRESSES_MAX)
		strcpy(call->tried[call->tries++], call->address);
	for (size_t i = 0; i < 4 && refusing[i] != NULL; i++)
		if (strcmp(call->address, refusing[i]) == 0) {
			if (!pool_connect_failed(pc, "Connection refused", call->failure,
			                         sizeof(call->failure)))
				pool_release(pc); /* the driver ends it */
			return;
		}
	struct fake_conn *conn = calloc(1, sizeof(*conn));
	conn->id = ++opened_ids;
	pool_conn_add(pool, &conn->pc, pc->key, pc);
	if (hanging != NULL && strcmp(call->address, hanging) == 0)
		return; /* connecting for ever */
	pool_connected(pc);
	serve(call, conn, true);
}

static void fake_close(struct pool_conn *pc)
{
	pool_conn_remove(pc);
	free(POOL_OWNER(pc, struct fake_conn, pc));
}

static void fake_resolved(struct pool_call *pc, const char *address)
{
	snprintf(POOL_OWNER(pc, struct fake_call, pc)->address, RESOLVE_ADDRESS_SIZE, "%s", address);
}

static void fake_unresolved(struct pool_call *pc, const char *message)
{
	struct fake_call *call = POOL_OWNER(pc, struct fake_call, pc);
	snprintf(call->failure, sizeof(call->failure), "cannot resolve: %s", message);
}

static const struct pool_kind fake_kind = {
	.id = POOL_REDIS,
	.name = "redis",
	.max = 2,
	.reuse = fake_reuse,
	.open = fake_open,
	.close = fake_close,
	.destroy = fake_close,
	.resolved = fake_resolved,
	.unresolved = fake_unresolved,
};

static void never(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	(void)argument;
	ck_abort_msg("a call's timeout fired");
}

static struct fake_call *submit(struct pool *pool, int id, unsigned owner)
{
	struct fake_call *call = calloc(1, sizeof(*call));
	call->id = id;
	ck_assert_int_eq(pool_call_init(&call->pc, pool, owner, "redis://10.0.0.1", 600, never, call), 0);
	pool_submit(pool, &call->pc, NULL);
	return call;
}

/* The call ends; its connection goes back to the pool. */
static void finish(struct pool *pool, struct fake_call *call)
{
	struct pool_conn *conn = pool_release(&call->pc);
	if (conn != NULL)
		pool_conn_idle(conn);
	char key[64];
	strcpy(key, call->pc.key);
	pool_call_fini(&call->pc);
	free(call);
	pool_kick(pool, key);
}

static json_int_t stat(const char *field)
{
	json_t *stats = pool_stats();
	json_int_t value = json_integer_value(json_object_get(json_object_get(stats, "redis"), field));
	json_decref(stats);
	return value;
}

START_TEST(test_calls_beyond_the_maximum_wait_in_order)
{
	struct event_base *base = event_base_new();
	struct pool *pool = pool_get(&fake_kind, base);
	struct fake_call *one = submit(pool, 1, 0), *two = submit(pool, 2, 0);
	struct fake_call *three = submit(pool, 3, 0), *four = submit(pool, 4, 0);
	ck_assert(one->fresh && two->fresh);
	ck_assert_ptr_null(three->conn);
	ck_assert_int_eq(stat("opened"), 2);
	ck_assert_int_eq(stat("waiting"), 2);
	struct fake_conn *first = one->conn;
	finish(pool, one);
	ck_assert_ptr_eq(three->conn, first); /* the oldest waiting, on the connection given back */
	ck_assert(!three->fresh);
	ck_assert_ptr_null(four->conn);
	finish(pool, two);
	ck_assert_ptr_nonnull(four->conn);
	ck_assert_int_eq(served_count, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(served_order[i], i + 1);
	ck_assert_int_eq(stat("opened"), 2);
	ck_assert_int_eq(stat("waiting"), 0);
	finish(pool, three);
	finish(pool, four);
	ck_assert_int_eq(stat("idle"), 2);
	pool_worker_exit(&fake_kind, base);
	ck_assert_int_eq(stat("closed"), 2);
	event_base_free(base);
}
END_TEST

START_TEST(test_a_connection_never_serves_another_owner)
{
	struct event_base *base = event_base_new();
	struct pool *pool = pool_get(&fake_kind, base);
	finish(pool, submit(pool, 1, 0)); /* root's connection, idle now */
	ck_assert_int_eq(stat("idle"), 1);
	struct fake_call *other = submit(pool, 2, 1000);
	ck_assert(other->fresh); /* not root's */
	ck_assert_int_eq(other->conn->id, 2);
	ck_assert_int_eq(stat("idle"), 1);
	struct fake_call *again = submit(pool, 3, 0);
	ck_assert(!again->fresh);
	ck_assert_int_eq(again->conn->id, 1);
	finish(pool, other);
	finish(pool, again);
	pool_worker_exit(&fake_kind, base);
	event_base_free(base);
}
END_TEST

START_TEST(test_idle_connections_close_after_the_idle_time)
{
	pool_set_idle_seconds(0.05);
	struct event_base *base = event_base_new();
	struct pool *pool = pool_get(&fake_kind, base);
	finish(pool, submit(pool, 1, 0));
	ck_assert_int_eq(stat("idle"), 1);
	double deadline = now_monotonic() + 30;
	while (stat("closed") == 0) {
		ck_assert_msg(now_monotonic() < deadline, "the idle connection was not closed");
		event_base_loop(base, EVLOOP_ONCE);
	}
	ck_assert_int_eq(stat("idle"), 0);
	ck_assert_int_eq(stat("open"), 0);
	/* Nothing idle: the sweep is not armed, the loop has nothing left. */
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	pool_worker_exit(&fake_kind, base);
	event_base_free(base);
}
END_TEST

struct answer {
	bool called;
	char address[256]; /* the first address, or the message */
	struct resolve_addresses all;
};

static void on_answer(void *argument, const struct resolve_addresses *addresses, const char *message)
{
	struct answer *answer = argument;
	answer->called = true;
	snprintf(answer->address, sizeof(answer->address), "%s",
	         addresses != NULL ? addresses->address[0] : message);
	if (addresses != NULL)
		answer->all = *addresses;
}

/* Runs base until answer is called (a hang guard of 60 s). */
static void wait_answer(struct event_base *base, struct answer *answer, const char *what)
{
	double deadline = now_monotonic() + 60;
	while (!answer->called) {
		ck_assert_msg(now_monotonic() < deadline, "no answer for %s", what);
		event_base_loop(base, EVLOOP_ONCE);
	}
}

/* A DNS server of the test's own, which the resolver is pointed at. */
static struct dns_server *dns_up(struct dns_server *server, char *directory, size_t size)
{
	snprintf(directory, size, "/tmp/weft-pool-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(directory));
	dns_server_start(server);
	char conf[300];
	dns_server_write_conf(server, directory, conf, sizeof(conf));
	ck_assert_int_eq(resolve_set_conf(conf), WEFT_OK);
	return server;
}

static void dns_down(struct dns_server *server, const char *directory)
{
	dns_server_free(server);
	char conf[300];
	snprintf(conf, sizeof(conf), "%s/resolv.conf", directory);
	unlink(conf);
	rmdir(directory);
}

START_TEST(test_a_name_is_answered_after_resolve_start)
{
	struct event_base *base = event_base_new();
	struct answer answer = {0};
	ck_assert_ptr_nonnull(resolve_start(base, "localhost", on_answer, &answer));
	ck_assert(!answer.called); /* even from /etc/hosts: never inside resolve_start */
	double deadline = now_monotonic() + 30;
	while (!answer.called) {
		ck_assert_msg(now_monotonic() < deadline, "no answer for localhost");
		event_base_loop(base, EVLOOP_ONCE);
	}
	ck_assert_msg(strcmp(answer.address, "127.0.0.1") == 0 || strcmp(answer.address, "::1") == 0, "%s",
	              answer.address);
	/* Cancelled: never answered. */
	struct answer cancelled = {0};
	resolve_cancel(resolve_start(base, "localhost", on_answer, &cancelled));
	event_base_loop(base, EVLOOP_NONBLOCK);
	ck_assert(!cancelled.called);
	resolve_worker_exit(base);
	event_base_free(base);
}
END_TEST

/* Every address of a name, in the server's order (IPv4 first: evdns puts
 * the A answers before the AAAA ones), at most RESOLVE_ADDRESSES_MAX. */
START_TEST(test_a_name_gives_every_address_in_order_and_at_most_eight)
{
	struct dns_server *server = dns_server_new();
	dns_server_add(server, "two.weft.test", "127.0.0.2");
	dns_server_add(server, "two.weft.test", "127.0.0.1");
	for (int i = 1; i <= 10; i++) {
		char address[32];
		snprintf(address, sizeof(address), "10.0.0.%d", i);
		dns_server_add(server, "ten.weft.test", address);
	}
	char directory[64];
	dns_up(server, directory, sizeof(directory));
	struct event_base *base = event_base_new();
	struct answer two = {0}, ten = {0};
	ck_assert_ptr_nonnull(resolve_start(base, "two.weft.test", on_answer, &two));
	ck_assert_ptr_nonnull(resolve_start(base, "TEN.weft.test", on_answer, &ten));
	wait_answer(base, &two, "two.weft.test");
	wait_answer(base, &ten, "ten.weft.test");
	ck_assert_uint_eq(two.all.count, 2);
	ck_assert_str_eq(two.all.address[0], "127.0.0.2");
	ck_assert_str_eq(two.all.address[1], "127.0.0.1");
	ck_assert_uint_eq(ten.all.count, RESOLVE_ADDRESSES_MAX);
	for (int i = 0; i < RESOLVE_ADDRESSES_MAX; i++) {
		char address[32];
		snprintf(address, sizeof(address), "10.0.0.%d", i + 1);
		ck_assert_str_eq(ten.all.address[i], address);
	}
	resolve_worker_exit(base);
	event_base_free(base);
	dns_down(server, directory);
}
END_TEST

/* A name the server says does not exist fails at once, saying so. */
START_TEST(test_a_name_that_does_not_exist_fails_saying_so)
{
	struct dns_server *server = dns_server_new();
	char directory[64];
	dns_up(server, directory, sizeof(directory));
	struct event_base *base = event_base_new();
	struct answer answer = {0};
	ck_assert_ptr_nonnull(resolve_start(base, "nowhere.weft.test", on_answer, &answer));
	wait_answer(base, &answer, "nowhere.weft.test");
	ck_assert_uint_eq(answer.all.count, 0);
	ck_assert_msg(strstr(answer.address, "does not exist") != NULL, "%s", answer.address);
	resolve_worker_exit(base);
	event_base_free(base);
	dns_down(server, directory);
}
END_TEST

static struct fake_call *submit_named(struct pool *pool, int id, const char *host, double timeout,
                                      void (*on_timeout)(evutil_socket_t, short, void *))
{
	struct fake_call *call = calloc(1, sizeof(*call));
	call->id = id;
	ck_assert_int_eq(pool_call_init(&call->pc, pool, 0, "redis://name", timeout, on_timeout, call), 0);
	pool_submit(pool, &call->pc, host);
	return call;
}

/* Runs base until call is served or has failed (a hang guard of 60 s). */
static void wait_call(struct event_base *base, struct fake_call *call)
{
	double deadline = now_monotonic() + 60;
	while (call->conn == NULL && call->failure[0] == '\0') {
		ck_assert_msg(now_monotonic() < deadline, "call %d neither served nor failed", call->id);
		event_base_loop(base, EVLOOP_ONCE);
	}
}

/* Addresses that refuse are skipped: the call is served on the first one that
 * takes it, having tried those before it in order. */
START_TEST(test_the_pool_tries_the_next_address_when_one_refuses)
{
	struct dns_server *server = dns_server_new();
	dns_server_add(server, "three.weft.test", "127.0.0.2");
	dns_server_add(server, "three.weft.test", "127.0.0.3");
	dns_server_add(server, "three.weft.test", "127.0.0.1");
	char directory[64];
	dns_up(server, directory, sizeof(directory));
	refusing[0] = "127.0.0.2";
	refusing[1] = "127.0.0.3";
	struct event_base *base = event_base_new();
	struct pool *pool = pool_get(&fake_kind, base);
	struct fake_call *call = submit_named(pool, 1, "three.weft.test", 600, never);
	wait_call(base, call);
	ck_assert_msg(call->failure[0] == '\0', "%s", call->failure);
	ck_assert_uint_eq(call->tries, 3);
	ck_assert_str_eq(call->tried[0], "127.0.0.2");
	ck_assert_str_eq(call->tried[1], "127.0.0.3");
	ck_assert_str_eq(call->tried[2], "127.0.0.1");
	ck_assert_int_eq(stat("opened"), 1); /* the refused ones were never connections */
	ck_assert_int_eq(stat("waiting"), 0);
	finish(pool, call);
	/* The next call of that URL reuses the connection: no address is tried again. */
	struct fake_call *again = submit_named(pool, 2, "three.weft.test", 600, never);
	wait_call(base, again);
	ck_assert(!again->fresh);
	ck_assert_uint_eq(again->tries, 0);
	finish(pool, again);
	pool_worker_exit(&fake_kind, base);
	event_base_free(base);
	dns_down(server, directory);
}
END_TEST

/* Every address refuses: the call fails with a message naming the host, how
 * many addresses it had, the last one and its error. */
START_TEST(test_a_call_fails_naming_the_host_once_every_address_refused)
{
	struct dns_server *server = dns_server_new();
	dns_server_add(server, "closed.weft.test", "127.0.0.2");
	dns_server_add(server, "closed.weft.test", "127.0.0.3");
	dns_server_add(server, "one.weft.test", "127.0.0.2");
	char directory[64];
	dns_up(server, directory, sizeof(directory));
	refusing[0] = "127.0.0.2";
	refusing[1] = "127.0.0.3";
	struct event_base *base = event_base_new();
	struct pool *pool = pool_get(&fake_kind, base);
	struct fake_call *call = submit_named(pool, 1, "closed.weft.test", 600, never);
	wait_call(base, call);
	ck_assert_uint_eq(call->tries, 2);
	ck_assert_str_eq(call->failure, "cannot connect to 'closed.weft.test' at any of its 2 addresses; "
	                                "the last, 127.0.0.3: Connection refused");
	struct fake_call *one = submit_named(pool, 2, "one.weft.test", 600, never);
	wait_call(base, one);
	ck_assert_str_eq(one->failure, "cannot connect to 'one.weft.test' (127.0.0.2): Connection refused");
	finish(pool, call);
	finish(pool, one);
	pool_worker_exit(&fake_kind, base);
	event_base_free(base);
	dns_down(server, directory);
}
END_TEST

static bool timed_out;

static void on_job_timeout(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	(void)argument;
	timed_out = true;
}

/* An address whose connect never completes is given up after its share of
 * the job's time (half of it, with two addresses): its connection is closed
 * and the next address serves the call before the job's own timeout. */
START_TEST(test_an_address_that_hangs_is_given_up_after_its_share_of_the_timeout)
{
	struct dns_server *server = dns_server_new();
	dns_server_add(server, "slow.weft.test", "127.0.0.2");
	dns_server_add(server, "slow.weft.test", "127.0.0.1");
	char directory[64];
	dns_up(server, directory, sizeof(directory));
	hanging = "127.0.0.2";
	struct event_base *base = event_base_new();
	struct pool *pool = pool_get(&fake_kind, base);
	struct fake_call *call = submit_named(pool, 1, "slow.weft.test", 1.0, on_job_timeout);
	double deadline = now_monotonic() + 60;
	while (call->conn == NULL && !timed_out) {
		ck_assert_msg(now_monotonic() < deadline, "neither served nor timed out");
		event_base_loop(base, EVLOOP_ONCE);
	}
	ck_assert_msg(!timed_out, "the job's timeout came before the hung address's deadline");
	ck_assert_str_eq(call->conn == NULL ? "" : call->address, "127.0.0.1");
	ck_assert_uint_eq(call->tries, 2);
	ck_assert_int_eq(stat("opened"), 2);
	ck_assert_int_eq(stat("closed"), 1); /* the hung one */
	finish(pool, call);
	pool_worker_exit(&fake_kind, base);
	event_base_free(base);
	dns_down(server, directory);
}
END_TEST

START_TEST(test_names_and_numbers_are_told_apart)
{
	ck_assert(resolve_is_numeric("127.0.0.1"));
	ck_assert(resolve_is_numeric("::1"));
	ck_assert(!resolve_is_numeric("localhost"));
	ck_assert(resolve_name_valid("db-1.example.com"));
	ck_assert(!resolve_name_valid(""));
	ck_assert(!resolve_name_valid("-x"));
	ck_assert(!resolve_name_valid("a b"));
	ck_assert(!resolve_name_valid("a/b"));
	char long_name[300];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ck_assert(!resolve_name_valid(long_name));
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("pool");
	TCase *pool = tcase_create("pool");
	tcase_add_test(pool, test_calls_beyond_the_maximum_wait_in_order);
	tcase_add_test(pool, test_a_connection_never_serves_another_owner);
	tcase_add_test(pool, test_idle_connections_close_after_the_idle_time);
	tcase_add_test(pool, test_a_name_is_answered_after_resolve_start);
	tcase_add_test(pool, test_names_and_numbers_are_told_apart);
	tcase_add_test(pool, test_a_name_gives_every_address_in_order_and_at_most_eight);
	tcase_add_test(pool, test_a_name_that_does_not_exist_fails_saying_so);
	tcase_add_test(pool, test_the_pool_tries_the_next_address_when_one_refuses);
	tcase_add_test(pool, test_a_call_fails_naming_the_host_once_every_address_refused);
	tcase_add_test(pool, test_an_address_that_hangs_is_given_up_after_its_share_of_the_timeout);
	suite_add_tcase(suite, pool);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
