/*
 * The blocking built-ins: argument checks, results against known values, and
 * their failures (error type and a message naming the path or host). The
 * bodies are called directly here, and through the pool at the end (the pool
 * has tests of its own).
 * Names resolved come from the hosts file only.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/executors/thread/blocking.h"
#include "daemon/core/principal.h"
#include "weft/error.h"

#define ck_assert_weft(actual, expected)                                                           \
	ck_assert_msg((actual) == (expected), "got %s (%s), expected %s", weft_error_code(actual), \
		      weft_strerror(actual), weft_error_code(expected))

#define SHA256_OF_NOTHING "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define FOX "The quick brown fox jumps over the lazy dog"
#define SHA256_OF_FOX "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"

/* A private directory for each test's files (each test runs in its own process). */
static char directory[256];

static void make_directory(void)
{
	const char *temporary = getenv("TMPDIR");
	snprintf(directory, sizeof(directory), "%s/weft-blocking-XXXXXX",
		 temporary != NULL && temporary[0] != '\0' ? temporary : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(directory));
}

static void remove_directory(void)
{
	char command[512];
	snprintf(command, sizeof(command), "rm -rf '%s'", directory);
	ck_assert_int_eq(system(command), 0);
}

/* Writes `length` bytes to a new file in the test's directory; returns its path (static). */
static const char *write_file(const char *name, const void *data, size_t length)
{
	static char path[512];
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s", directory, name);
	ck_assert_ptr_nonnull(file = fopen(path, "wb"));
	ck_assert_uint_eq(fwrite(data, 1, length, file), length);
	ck_assert_int_eq(fclose(file), 0);
	return path;
}

static int open_as(const void *owner, const char *path, int *fd, int *error)
{
	return principal_open_regular(owner, path, fd, error);
}

/* The rights of the test process itself (each test is its own process). */
static const struct blocking_owner *self_owner(void)
{
	static struct blocking_owner self = {open_as, NULL};
	if (self.owner == NULL)
		self.owner = principal_for_daemon();
	return &self;
}

/* Runs a built-in on `args` (stolen), expecting success; returns the result (new reference). */
static json_t *run_ok(const char *name, json_t *args)
{
	const struct blocking_function *function = blocking_find(name);
	struct blocking_outcome outcome;
	char message[BLOCKING_ERROR_MESSAGE_SIZE];
	const char *field;
	int rv;

	ck_assert_ptr_nonnull(function);
	ck_assert_ptr_nonnull(args);
	rv = function->check(args, message, sizeof(message), &field);
	ck_assert_msg(rv == WEFT_OK, "%s check: %s", name, message);
	rv = function->run(args, self_owner(), NULL, &outcome);
	ck_assert_msg(rv == WEFT_OK, "%s failed: %s: %s", name, outcome.error_type,
		      outcome.error_message);
	ck_assert_ptr_nonnull(outcome.result);
	json_decref(args);
	return outcome.result;
}

/* Runs a built-in on `args` (stolen), expecting a failure of `type`; the
 * message is copied to message[BLOCKING_ERROR_MESSAGE_SIZE]. */
static void run_fails(const char *name, json_t *args, const char *type, char *message)
{
	const struct blocking_function *function = blocking_find(name);
	struct blocking_outcome outcome;
	const char *field;
	int rv;

	ck_assert_ptr_nonnull(args);
	rv = function->check(args, message, BLOCKING_ERROR_MESSAGE_SIZE, &field);
	ck_assert_msg(rv == WEFT_OK, "%s check: %s", name, message);
	rv = function->run(args, self_owner(), NULL, &outcome);
	ck_assert_weft(rv, WEFT_EINVAL);
	ck_assert_ptr_null(outcome.result);
	ck_assert_str_eq(outcome.error_type, type);
	memcpy(message, outcome.error_message, sizeof(outcome.error_message));
	json_decref(args);
}

/* Expects `args` (stolen; NULL allowed) to be refused with a message
 * containing `words`, naming `field` (NULL: none). */
static void check_refuses(const char *name, json_t *args, const char *field, const char *words)
{
	const struct blocking_function *function = blocking_find(name);
	char message[256] = "";
	const char *got_field = "unset";
	int rv;

	rv = function->check(args, message, sizeof(message), &got_field);
	ck_assert_weft(rv, WEFT_EBADARGS);
	ck_assert_msg(strstr(message, words) != NULL, "message '%s' lacks '%s'", message, words);
	ck_assert_msg(strncmp(message, name, strlen(name)) == 0, "message '%s' does not name %s",
		      message, name);
	if (field == NULL)
		ck_assert_ptr_null(got_field);
	else
		ck_assert_str_eq(got_field, field);
	json_decref(args);
}

/* ---- the table -------------------------------------------------------- */

START_TEST(table_lists_every_builtin_with_its_arguments)
{
	const char *names[] = {"sleep.blocking", "count.blocking", "file.sha256", "dns.resolve"};

	ck_assert_uint_eq(blocking_function_count, 4);
	for (size_t i = 0; i < 4; i++) {
		const struct blocking_function *function = blocking_find(names[i]);
		json_t *description;

		ck_assert_ptr_nonnull(function);
		ck_assert_str_eq(function->name, names[i]);
		ck_assert_ptr_nonnull(description = blocking_describe(function));
		ck_assert_str_eq(json_string_value(json_object_get(description, "executor")),
				 "thread");
		ck_assert_str_eq(json_string_value(json_object_get(description, "name")), names[i]);
		ck_assert(json_is_string(json_object_get(description, "summary")));
		ck_assert(json_object_size(json_object_get(description, "args")) >= 1);
		json_decref(description);
	}
	ck_assert_ptr_null(blocking_find("sleep"));
	ck_assert_ptr_null(blocking_find(NULL));
}
END_TEST

/* ---- sleep.blocking --------------------------------------------------- */

START_TEST(sleep_blocks_for_the_time_asked)
{
	struct timespec before, after;
	json_t *result;

	clock_gettime(CLOCK_MONOTONIC, &before);
	result = run_ok("sleep.blocking", json_pack("{s:f}", "seconds", 0.05));
	clock_gettime(CLOCK_MONOTONIC, &after);
	double slept = (double)(after.tv_sec - before.tv_sec) +
		       (double)(after.tv_nsec - before.tv_nsec) / 1e9;
	ck_assert_msg(slept >= 0.05, "slept only %.4f s", slept);
	ck_assert(json_is_null(result));
	json_decref(result);
	json_decref(run_ok("sleep.blocking", json_pack("{s:i}", "seconds", 0)));
}
END_TEST

START_TEST(sleep_refuses_bad_arguments)
{
	check_refuses("sleep.blocking", NULL, "seconds", "missing argument 'seconds'");
	check_refuses("sleep.blocking", json_object(), "seconds", "missing argument 'seconds'");
	check_refuses("sleep.blocking", json_pack("[i]", 1), NULL, "must be a JSON object");
	check_refuses("sleep.blocking", json_pack("{s:f}", "seconds", -0.5), "seconds",
		      "'seconds' must be a number from 0");
	check_refuses("sleep.blocking", json_pack("{s:f}", "seconds", 1e12), "seconds",
		      "'seconds' must be a number from 0");
	check_refuses("sleep.blocking", json_pack("{s:s}", "seconds", "1"), "seconds",
		      "'seconds' must be a number");
	check_refuses("sleep.blocking", json_pack("{s:b}", "seconds", 1), "seconds",
		      "'seconds' must be a number");
	check_refuses("sleep.blocking", json_pack("{s:i, s:i}", "seconds", 1, "secs", 2), "secs",
		      "unknown argument 'secs'; it takes 'seconds'");
}
END_TEST

/* ---- file.sha256 ------------------------------------------------------ */

static void assert_digest(json_t *result, const char *hex, long long size)
{
	ck_assert_str_eq(json_string_value(json_object_get(result, "sha256")), hex);
	ck_assert_int_eq(json_integer_value(json_object_get(result, "size")), size);
	json_decref(result);
}

START_TEST(sha256_of_known_contents)
{
	const char *path;

	make_directory();
	path = write_file("empty", "", 0);
	assert_digest(run_ok("file.sha256", json_pack("{s:s}", "path", path)), SHA256_OF_NOTHING,
		      0);
	path = write_file("fox", FOX, strlen(FOX));
	assert_digest(run_ok("file.sha256", json_pack("{s:s}", "path", path)), SHA256_OF_FOX,
		      (long long)strlen(FOX));
	remove_directory();
}
END_TEST

START_TEST(sha256_of_a_large_file_matches_sha256sum)
{
	/* Several chunks and a ragged end. */
	const size_t length = 3 * 1024 * 1024 + 12345;
	unsigned char *data = malloc(length);
	unsigned int state = 12345;
	char command[600], expected[80] = "";
	const char *path;
	FILE *pipe;

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < length; i++) {
		state = state * 1103515245u + 12345u;
		data[i] = (unsigned char)(state >> 16);
	}
	make_directory();
	path = write_file("large", data, length);
	free(data);
	snprintf(command, sizeof(command), "sha256sum '%s'", path);
	ck_assert_ptr_nonnull(pipe = popen(command, "r"));
	ck_assert_int_eq(fscanf(pipe, "%64s", expected), 1);
	ck_assert_int_eq(pclose(pipe), 0);
	ck_assert_uint_eq(strlen(expected), 64);
	assert_digest(run_ok("file.sha256", json_pack("{s:s}", "path", path)), expected,
		      (long long)length);
	remove_directory();
}
END_TEST

START_TEST(sha256_of_a_missing_file_is_an_os_error)
{
	char message[BLOCKING_ERROR_MESSAGE_SIZE], path[300];

	make_directory();
	snprintf(path, sizeof(path), "%s/not-there", directory);
	run_fails("file.sha256", json_pack("{s:s}", "path", path), "OSError", message);
	ck_assert_msg(strstr(message, path) != NULL, "'%s' does not name the path", message);
	ck_assert_msg(strstr(message, strerror(ENOENT)) != NULL, "'%s' gives no reason", message);
	remove_directory();
}
END_TEST

START_TEST(sha256_of_a_directory_is_an_os_error)
{
	char message[BLOCKING_ERROR_MESSAGE_SIZE];

	make_directory();
	run_fails("file.sha256", json_pack("{s:s}", "path", directory), "OSError", message);
	ck_assert_msg(strstr(message, directory) != NULL, "'%s' does not name the path", message);
	ck_assert_msg(strstr(message, strerror(EISDIR)) != NULL, "'%s' gives no reason", message);
	remove_directory();
}
END_TEST

/* Hashes `path` with the rights of `owner`: the error type, "" on success. */
static const char *hash_as(const struct blocking_owner *owner, const char *path, char *message)
{
	static char type[BLOCKING_ERROR_TYPE_SIZE];
	struct blocking_outcome outcome;
	json_t *args = json_pack("{s:s}", "path", path);
	int rv = blocking_file_sha256_run(args, owner, NULL, &outcome);
	json_decref(args);
	snprintf(type, sizeof(type), "%s", rv == WEFT_OK ? "" : outcome.error_type);
	snprintf(message, BLOCKING_ERROR_MESSAGE_SIZE, "%s", outcome.error_message);
	json_decref(outcome.result);
	return type;
}

START_TEST(sha256_of_an_unreadable_file_is_a_permission_error)
{
	char message[BLOCKING_ERROR_MESSAGE_SIZE];
	struct blocking_owner nobody = {open_as, NULL};
	const char *path;

	make_directory();
	path = write_file("secret", "x", 1);
	ck_assert_int_eq(chmod(path, 0), 0);
	/* As root the call takes nobody's rights on this thread, then gives
	 * them back; as a user the file is not ours to read either way. */
	nobody.owner = geteuid() == 0 ? principal_for_peer(65534, 65534, -1) : principal_for_daemon();
	ck_assert_str_eq(hash_as(&nobody, path, message), "PermissionError");
	ck_assert_msg(strstr(message, strerror(EACCES)) != NULL, "'%s' gives no reason", message);
	if (geteuid() == 0) {
		/* The thread is root again: root reads a mode-0 file. */
		ck_assert_str_eq(hash_as(self_owner(), path, message), "");
		ck_assert_int_eq(setfsuid((uid_t)-1), 0);
	}
	principal_unref((struct principal *)nobody.owner);
	remove_directory();
}
END_TEST

START_TEST(sha256_without_an_owner_opens_nothing)
{
	char message[BLOCKING_ERROR_MESSAGE_SIZE];
	const char *path;

	make_directory();
	path = write_file("plain", "x", 1);
	ck_assert_str_eq(hash_as(NULL, path, message), "PermissionError");
	remove_directory();
}
END_TEST

START_TEST(sha256_refuses_endless_files_without_hanging)
{
	char message[BLOCKING_ERROR_MESSAGE_SIZE], fifo[300];

	/* A FIFO with no writer would block open() and never end. */
	make_directory();
	snprintf(fifo, sizeof(fifo), "%s/fifo", directory);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	run_fails("file.sha256", json_pack("{s:s}", "path", fifo), "OSError", message);
	ck_assert_msg(strstr(message, "not a regular file") != NULL, "'%s'", message);
	run_fails("file.sha256", json_pack("{s:s}", "path", "/dev/zero"), "OSError", message);
	ck_assert_msg(strstr(message, "not a regular file") != NULL, "'%s'", message);
	remove_directory();
}
END_TEST

START_TEST(sha256_refuses_bad_arguments)
{
	check_refuses("file.sha256", json_object(), "path", "missing argument 'path'");
	check_refuses("file.sha256", json_pack("{s:i}", "path", 3), "path",
		      "'path' must be a file path");
	check_refuses("file.sha256", json_pack("{s:s}", "path", ""), "path", "1 to 4095 bytes");
	check_refuses("file.sha256", json_pack("{s:s#}", "path", "a\0b", (int)3), "path",
		      "without NUL");
	check_refuses("file.sha256", json_pack("{s:s, s:b}", "path", "x", "follow", 1), "follow",
		      "unknown argument 'follow'");
	check_refuses("file.sha256", json_string("x"), NULL, "must be a JSON object");
}
END_TEST

/* ---- dns.resolve ------------------------------------------------------ */

static bool has_address(json_t *result, const char *address)
{
	size_t index;
	json_t *value;

	json_array_foreach(json_object_get(result, "addresses"), index, value)
		if (strcmp(json_string_value(value), address) == 0)
			return true;
	return false;
}

START_TEST(resolve_localhost_from_the_hosts_file)
{
	json_t *result;

	result = run_ok("dns.resolve", json_pack("{s:s}", "host", "localhost"));
	ck_assert_msg(has_address(result, "127.0.0.1") || has_address(result, "::1"),
		      "localhost gave no loopback address");
	json_decref(result);

	result = run_ok("dns.resolve",
			json_pack("{s:s, s:s}", "host", "localhost", "family", "inet"));
	ck_assert(has_address(result, "127.0.0.1"));
	size_t index;
	json_t *value;
	json_array_foreach(json_object_get(result, "addresses"), index, value)
		ck_assert_msg(strchr(json_string_value(value), ':') == NULL, "inet gave %s",
			      json_string_value(value));
	json_decref(result);

	result = run_ok("dns.resolve", json_pack("{s:s, s:s}", "host", "::1", "family", "inet6"));
	ck_assert(has_address(result, "::1"));
	ck_assert_uint_eq(json_array_size(json_object_get(result, "addresses")), 1);
	json_decref(result);
}
END_TEST

START_TEST(resolve_of_an_unknown_name_is_a_dns_error)
{
	char message[BLOCKING_ERROR_MESSAGE_SIZE];

	run_fails("dns.resolve", json_pack("{s:s}", "host", "no-such-host.invalid"), "DNSError",
		  message);
	ck_assert_msg(strstr(message, "no-such-host.invalid") != NULL,
		      "'%s' does not name the host", message);
}
END_TEST

START_TEST(resolve_refuses_bad_arguments)
{
	check_refuses("dns.resolve", NULL, "host", "missing argument 'host'");
	check_refuses("dns.resolve", json_pack("{s:n}", "host"), "host",
		      "'host' must be a host name");
	check_refuses("dns.resolve", json_pack("{s:s}", "host", ""), "host", "1 to 1024 bytes");
	check_refuses("dns.resolve", json_pack("{s:s, s:s}", "host", "localhost", "family", "ipx"),
		      "family", "'family' must be \"inet\", \"inet6\" or \"any\"");
	check_refuses("dns.resolve", json_pack("{s:s, s:i}", "host", "localhost", "family", 4),
		      "family", "'family' must be");
	check_refuses("dns.resolve", json_pack("{s:s, s:i}", "host", "localhost", "port", 80),
		      "port", "unknown argument 'port'; it takes 'host', 'family'");
}
END_TEST

/* ---- calls on the pool ------------------------------------------------ */

static pthread_mutex_t calls_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t calls_changed = PTHREAD_COND_INITIALIZER;
static int calls_done; /* guarded by calls_mutex */

static void call_done(struct threadpool_work *work)
{
	(void)blocking_call_from_work(work);
	pthread_mutex_lock(&calls_mutex);
	calls_done++;
	pthread_cond_broadcast(&calls_changed);
	pthread_mutex_unlock(&calls_mutex);
}

static void wait_for_calls(int count)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&calls_mutex);
	while (calls_done < count)
		ck_assert_int_ne(pthread_cond_timedwait(&calls_changed, &calls_mutex, &until),
				 ETIMEDOUT);
	pthread_mutex_unlock(&calls_mutex);
}

/* Each test starts from zero, also when Check runs them in one process. */
static void calls_reset(void)
{
	pthread_mutex_lock(&calls_mutex);
	calls_done = 0;
	pthread_mutex_unlock(&calls_mutex);
}

START_TEST(calls_run_on_the_pool)
{
	struct threadpool *pool;
	struct blocking_call hash, resolve;
	json_t *hash_args, *resolve_args;
	const char *path;

	calls_reset();
	make_directory();
	path = write_file("fox", FOX, strlen(FOX));
	hash_args = json_pack("{s:s}", "path", path);
	resolve_args = json_pack("{s:s, s:s}", "host", "localhost", "family", "inet");
	ck_assert_weft(threadpool_create(2, 8, &pool), WEFT_OK);
	blocking_call_init(&hash, blocking_find("file.sha256"), hash_args, self_owner(), call_done);
	blocking_call_init(&resolve, blocking_find("dns.resolve"), resolve_args, NULL, call_done);
	ck_assert_weft(threadpool_submit(pool, &hash.work), WEFT_OK);
	ck_assert_weft(threadpool_submit(pool, &resolve.work), WEFT_OK);
	wait_for_calls(2);

	ck_assert(!hash.work.cancelled);
	ck_assert_weft(hash.rv, WEFT_OK);
	assert_digest(hash.outcome.result, SHA256_OF_FOX, (long long)strlen(FOX));
	ck_assert_weft(resolve.rv, WEFT_OK);
	ck_assert(has_address(resolve.outcome.result, "127.0.0.1"));
	json_decref(resolve.outcome.result);
	threadpool_free(pool);
	json_decref(hash_args);
	json_decref(resolve_args);
	remove_directory();
}
END_TEST

START_TEST(cancel_stops_a_running_hash_early)
{
	/* A sparse file costs no disk and takes seconds to hash in full. */
	const long long size = 16LL * 1024 * 1024 * 1024;
	struct threadpool_stats stats;
	struct threadpool *pool;
	struct blocking_call hash;
	char path[300];
	json_t *args;
	int fd;

	calls_reset();
	make_directory();
	snprintf(path, sizeof(path), "%s/sparse", directory);
	ck_assert_int_ge(fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600), 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
	args = json_pack("{s:s}", "path", path);
	ck_assert_weft(threadpool_create(1, 8, &pool), WEFT_OK);
	blocking_call_init(&hash, blocking_find("file.sha256"), args, self_owner(), call_done);
	ck_assert_weft(threadpool_submit(pool, &hash.work), WEFT_OK);
	for (int polls = 0;; polls++) {
		threadpool_stats(pool, &stats);
		if (stats.busy == 1)
			break;
		ck_assert_msg(polls < 10000, "the hash never started");
		struct timespec pause = {0, 1000000};
		nanosleep(&pause, NULL);
	}
	/* It is running: cancel cannot remove it, but the hash notices. */
	ck_assert(!threadpool_cancel(pool, &hash.work));
	wait_for_calls(1);
	ck_assert(!hash.work.cancelled);
	ck_assert_weft(hash.rv, WEFT_EINVAL);
	ck_assert_ptr_null(hash.outcome.result);
	ck_assert_str_eq(hash.outcome.error_type, "Cancelled");
	threadpool_free(pool);
	json_decref(args);
	remove_directory();
}
END_TEST

/* ---- messages ---------------------------------------------------------- */

START_TEST(messages_cut_long_values_on_a_character_boundary)
{
	char path[1100] = "/", message[BLOCKING_ERROR_MESSAGE_SIZE], key[300] = "";
	const struct blocking_function *function = blocking_find("file.sha256");
	const char *field;
	json_t *text, *args;

	/* 'é' is two bytes: an odd cut would split one, and jansson refuses
	 * such a string, so the daemon could not send the message. */
	for (int i = 0; i < 500; i++)
		strcat(path, "\xc3\xa9");
	run_fails("file.sha256", json_pack("{s:s}", "path", path), "OSError", message);
	ck_assert_ptr_nonnull(text = json_string(message));
	ck_assert_msg(strstr(message, "...") != NULL, "'%s' does not show the cut", message);
	json_decref(text);

	for (int i = 0; i < 100; i++)
		strcat(key, "\xc3\xa9");
	args = json_pack("{s:s, s:i}", "path", "x", key, 1);
	for (size_t size = 1; size < 120; size++) {
		ck_assert_weft(function->check(args, message, size, &field), WEFT_EBADARGS);
		ck_assert_msg((text = json_string(message)) != NULL,
			      "with %zu bytes the message is not UTF-8", size);
		json_decref(text);
	}
	json_decref(args);
}
END_TEST

static Suite *blocking_suite(void)
{
	Suite *suite = suite_create("blocking");
	TCase *table = tcase_create("table");
	TCase *sleep = tcase_create("sleep.blocking");
	TCase *sha256 = tcase_create("file.sha256");
	TCase *resolve = tcase_create("dns.resolve");
	TCase *pool = tcase_create("pool");

	tcase_add_test(table, table_lists_every_builtin_with_its_arguments);
	tcase_add_test(table, messages_cut_long_values_on_a_character_boundary);
	suite_add_tcase(suite, table);

	tcase_add_test(sleep, sleep_blocks_for_the_time_asked);
	tcase_add_test(sleep, sleep_refuses_bad_arguments);
	suite_add_tcase(suite, sleep);

	tcase_set_timeout(sha256, 60);
	tcase_add_test(sha256, sha256_of_known_contents);
	tcase_add_test(sha256, sha256_of_a_large_file_matches_sha256sum);
	tcase_add_test(sha256, sha256_of_a_missing_file_is_an_os_error);
	tcase_add_test(sha256, sha256_of_a_directory_is_an_os_error);
	tcase_add_test(sha256, sha256_of_an_unreadable_file_is_a_permission_error);
	tcase_add_test(sha256, sha256_without_an_owner_opens_nothing);
	tcase_add_test(sha256, sha256_refuses_endless_files_without_hanging);
	tcase_add_test(sha256, sha256_refuses_bad_arguments);
	suite_add_tcase(suite, sha256);

	tcase_set_timeout(resolve, 60);
	tcase_add_test(resolve, resolve_localhost_from_the_hosts_file);
	tcase_add_test(resolve, resolve_of_an_unknown_name_is_a_dns_error);
	tcase_add_test(resolve, resolve_refuses_bad_arguments);
	suite_add_tcase(suite, resolve);

	tcase_set_timeout(pool, 60);
	tcase_add_test(pool, calls_run_on_the_pool);
	tcase_add_test(pool, cancel_stops_a_running_hash_early);
	suite_add_tcase(suite, pool);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(blocking_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
