/*
 * What the tests of the IO built-ins against real servers share (check_sql,
 * check_mysql, check_redis, check_http): a free TCP port, a directory for a
 * server's files, stopping a server, and each suite's trust test set-up (a
 * throwaway user, the wire_send helper that sends as that user) with the
 * SKIP lines of what cannot run here. Main thread.
 */
#ifndef TESTS_SERVERS_H
#define TESTS_SERVERS_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tests/as_user.h"
#include "tests/fixture.h"

/* A TCP port on 127.0.0.1 that is free now (the server binds it next), or -1
 * when none could be had. Safe outside a test. */
int servers_free_port(void);

/* Makes "/tmp/weft-<name>-XXXXXX" in out[size], mode 0755, owned by uid/gid
 * (-1: the test's own). Returns false when it cannot. Safe outside a test. */
bool servers_make_directory(char *out, size_t size, const char *name, uid_t uid, gid_t gid);

/* Sends the server `signal_number` and waits for it (nothing when pid <= 0),
 * then removes `directory` with all it holds (nothing when it is ""). Safe
 * outside a test. */
void servers_stop(pid_t pid, int signal_number, const char *directory);

/* One counter of weftd's IO pools of one kind (the stats op's
 * io_pools.<kind>.<field>: "postgresql", "mysql", "redis"); fails the test
 * when there is none. */
json_int_t servers_pool_stat(const fixture *daemon, const char *kind, const char *field);
/* Polls that counter until it is `wanted`, for at most 30 s. */
void servers_wait_pool_stat(const fixture *daemon, const char *kind, const char *field,
                            json_int_t wanted);

struct dns_server;

/* Starts daemon with --resolv-conf naming dns alone (tests/dns_server.h),
 * which it starts: its resolv.conf goes in a new directory[size] (remove it
 * with servers_stop(0, 0, directory) once the daemon has stopped). */
void servers_start_with_dns(fixture *daemon, struct dns_server *dns, char *directory, size_t size);

/* url with its host "127.0.0.1" replaced by host, in out[size]. */
void servers_url_with_host(char *out, size_t size, const char *url, const char *host);

/* One program's suite against one kind of server. */
struct servers_suite {
	char skip[256];        /* why no test runs (no server here); "" when they run */
	char trust_skip[256];  /* why the trust test cannot run; "" when it can */
	struct user stranger;  /* the trust test's throwaway user */
	char sender[PATH_MAX]; /* the wire_send helper, which sends as the stranger */
};

/* From main, once suite->skip says whether the server runs: makes the
 * stranger "<prefix><pid>" (root only) and prints the SKIP lines ("SKIP:
 * <count> <name>: <why>"): the `tests` tests called `tests_name` when there
 * is no server, else the `trust_tests` that need the stranger when there is
 * none. */
void servers_suite_begin(struct servers_suite *suite, const char *prefix, int tests,
                         const char *tests_name, int trust_tests, const char *trust_name);
/* From main, after the suite ran: removes the stranger. */
void servers_suite_end(struct servers_suite *suite);

/* Sends request to url as the stranger. The reply, a new reference. */
json_t *servers_call_as(const struct servers_suite *suite, const char *url, const char *request);

/* The first lines of a test: it returns at once when it cannot run (its SKIP
 * was printed by servers_suite_begin). */
#define SERVERS_SKIP_UNLESS_UP(suite)                \
	do {                                         \
		if ((suite)->skip[0] != '\0')        \
			return;                      \
	} while (0)
#define SERVERS_SKIP_UNLESS_TRUSTED(suite)           \
	do {                                         \
		SERVERS_SKIP_UNLESS_UP(suite);       \
		if ((suite)->trust_skip[0] != '\0')  \
			return;                      \
	} while (0)

#endif
