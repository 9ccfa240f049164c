/*
 * The IO built-ins' connection pools (pool.c) and name lookups (resolve.c),
 * called directly on a private event_base with a fake kind of connection:
 * order of waiting calls, the per-key maximum, owners kept apart, idle
 * connections closed, counters, and lookups answered after resolve_start.
 */
#include <check.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/now.h"
#include "daemon/executors/io/pool.h"
#include "daemon/executors/io/resolve.h"

struct fake_conn {
	struct pool_conn pc;
	int id;
};

struct fake_call {
	struct pool_call pc;
	int id;
	struct fake_conn *conn; /* what served it */
	bool fresh;             /* on a connection opened for it */
};

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
	struct fake_conn *conn = calloc(1, sizeof(*conn));
	conn->id = ++opened_ids;
	pool_conn_add(pool, &conn->pc, pc->key, pc);
	serve(POOL_OWNER(pc, struct fake_call, pc), conn, true);
}

static void fake_close(struct pool_conn *pc)
{
	pool_conn_remove(pc);
	free(POOL_OWNER(pc, struct fake_conn, pc));
}

static void fake_resolved(struct pool_call *pc, const char *address)
{
	(void)pc;
	(void)address;
}

static void fake_unresolved(struct pool_call *pc, const char *message)
{
	(void)pc;
	(void)message;
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
	char address[64];
};

static void on_answer(void *argument, const char *address, const char *message)
{
	struct answer *answer = argument;
	answer->called = true;
	snprintf(answer->address, sizeof(answer->address), "%s", address != NULL ? address : message);
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
	suite_add_tcase(suite, pool);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
