/* http.get and http.request end to end, against the tests' own HTTP server
 * (tests/http_server.h) on 127.0.0.1. */
#include <check.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/as_user.h"
#include "tests/fixture.h"
#include "tests/http_server.h"
#include "tests/servers.h"
#include "tests/wire.h"

static struct servers_suite servers; /* no server of its own to skip for: only the trust tests */

/* Sends a request built with printf's format; returns the reply (new reference). */
/* Runs `fn` with `args` (JSON text) to its end; returns the submit reply. */
static json_t *run(const fixture *daemon, const char *fn, const char *args)
{
	json_t *reply = wire_callf(daemon->url, "{\"op\":\"submit\",\"fn\":\"%s\",\"args\":%s,\"wait\":30}", fn,
	                     args);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "submit failed: %s",
	              json_dumps(reply, 0));
	return reply;
}

static void wait_until(int (*count)(struct http_server *), struct http_server *server, int wanted,
                       const char *what)
{
	double deadline = fixture_now() + 30;
	while (count(server) < wanted)
		ck_assert_msg(fixture_now() < deadline, "%s: %d, not %d", what, count(server), wanted);
}

START_TEST(test_get_returns_status_headers_and_text_body)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char args[256], base[64];
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\"}", http_server_url(server, base, 64));
	json_t *reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "done");
	json_t *result = json_object_get(reply, "result");
	ck_assert_int_eq(json_integer_value(json_object_get(result, "status")), 200);
	ck_assert_str_eq(wire_text(result, "body"), "hello");
	ck_assert_ptr_null(json_object_get(result, "encoding"));
	ck_assert_str_eq(wire_text(json_object_get(result, "headers"), "x-test"), "yes");
	json_decref(reply);
	/* localhost needs no name resolution either. */
	snprintf(args, sizeof(args), "{\"url\":\"http://localhost:%d/hello\"}", http_server_port(server));
	reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(json_object_get(reply, "result"), "body"), "hello");
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

START_TEST(test_binary_body_comes_as_base64)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char args[256], base[64];
	snprintf(args, sizeof(args), "{\"url\":\"%s/binary\"}", http_server_url(server, base, 64));
	json_t *reply = run(&daemon, "http.get", args);
	json_t *result = json_object_get(reply, "result");
	ck_assert_str_eq(wire_text(result, "encoding"), "base64");
	/* 256 bytes: 344 characters of base64; the first three bytes 00 01 02 are "AAEC". */
	ck_assert_uint_eq(strlen(wire_text(result, "body")), 344);
	ck_assert(strncmp(wire_text(result, "body"), "AAEC", 4) == 0);
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

START_TEST(test_redirects_are_followed_unless_told_not_to)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char args[256], base[64];
	http_server_url(server, base, 64);
	snprintf(args, sizeof(args), "{\"url\":\"%s/redirect\"}", base);
	json_t *reply = run(&daemon, "http.get", args);
	json_t *result = json_object_get(reply, "result");
	ck_assert_str_eq(wire_text(result, "body"), "hello");
	ck_assert_int_eq(json_integer_value(json_object_get(result, "redirects")), 1);
	ck_assert_ptr_nonnull(strstr(wire_text(result, "url"), "/hello"));
	json_decref(reply);
	snprintf(args, sizeof(args), "{\"url\":\"%s/redirect\",\"follow_redirects\":false}", base);
	reply = run(&daemon, "http.get", args);
	result = json_object_get(reply, "result");
	ck_assert_int_eq(json_integer_value(json_object_get(result, "status")), 302);
	ck_assert_str_eq(wire_text(json_object_get(result, "headers"), "location"), "/hello");
	json_decref(reply);
	snprintf(args, sizeof(args), "{\"url\":\"%s/loop\",\"max_redirects\":3}", base);
	reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "TooManyRedirects");
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

/* A hostile user must not read the daemon's (root's) files through a URL. */
START_TEST(test_only_http_and_https_are_reachable)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	static const char *const refused[] = {"file:///etc/passwd", "ftp://127.0.0.1/x",
	                                      "gopher://127.0.0.1/", "dict://127.0.0.1/", "/etc/passwd",
	                                      "http://"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		json_t *reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"http.get\",\"args\":{\"url\":\"%s\"}}",
		                     refused[i]);
		ck_assert_str_eq(wire_error_code(reply), "bad_arguments");
		json_decref(reply);
	}
	char args[256], base[64];
	snprintf(args, sizeof(args), "{\"url\":\"%s/redirect-file\"}", http_server_url(server, base, 64));
	json_t *reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "HTTPError");
	char *dump = json_dumps(reply, 0);
	ck_assert_ptr_null(strstr(dump, "root:"));
	free(dump);
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

START_TEST(test_bad_arguments_are_refused_at_submit)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	static const char *const refused[] = {
	        "{}",
	        "{\"url\":\"http://127.0.0.1/\",\"headers\":{\"X-A\":\"1\\r\\nX-Injected: 1\"}}",
	        "{\"url\":\"http://127.0.0.1/\",\"headers\":{\"Bad Name\":\"1\"}}",
	        "{\"url\":\"http://127.0.0.1/\",\"max_size\":999999999}",
	        "{\"url\":\"http://127.0.0.1/\",\"timeout\":-1}",
	        "{\"url\":\"http://127.0.0.1/\",\"method\":\"POST\"}",
	        "{\"url\":\"http://127.0.0.1/\",\"nonsense\":1}",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		json_t *reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"http.get\",\"args\":%s}",
		                     refused[i]);
		ck_assert_msg(wire_error_code(reply) != NULL && strcmp(wire_error_code(reply), "bad_arguments") == 0,
		              "%s was not refused: %s", refused[i], json_dumps(reply, 0));
		json_decref(reply);
	}
	json_t *reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"http.request\",\"args\":"
	                                 "{\"url\":\"http://127.0.0.1/\",\"method\":\"get me\"}}");
	ck_assert_str_eq(wire_error_code(reply), "bad_arguments");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_request_sends_method_headers_and_body)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char args[512], base[64];
	http_server_url(server, base, 64);
	snprintf(args, sizeof(args),
	         "{\"method\":\"PUT\",\"url\":\"%s/echo\",\"body\":\"payload\",\"headers\":{\"X-Echo\":\"hi\"}}",
	         base);
	json_t *reply = run(&daemon, "http.request", args);
	ck_assert_str_eq(wire_text(json_object_get(reply, "result"), "body"), "PUT payload hi");
	json_decref(reply);
	snprintf(args, sizeof(args), "{\"method\":\"POST\",\"url\":\"%s/echo\",\"body\":\"x=1\"}", base);
	reply = run(&daemon, "http.request", args);
	ck_assert_str_eq(wire_text(json_object_get(reply, "result"), "body"), "POST x=1 -");
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

START_TEST(test_server_error_is_a_status_or_with_raise_for_status_a_failure)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char args[256], base[64];
	http_server_url(server, base, 64);
	snprintf(args, sizeof(args), "{\"url\":\"%s/status?code=503\"}", base);
	json_t *reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "done");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(reply, "result"), "status")), 503);
	json_decref(reply);
	snprintf(args, sizeof(args), "{\"url\":\"%s/status?code=503\",\"raise_for_status\":true}", base);
	reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "HTTPStatusError");
	json_t *details = json_object_get(json_object_get(reply, "error"), "details");
	ck_assert_int_eq(json_integer_value(json_object_get(details, "status")), 503);
	ck_assert_str_eq(wire_text(details, "body"), "status 503");
	json_decref(reply);
	/* Nobody listens: a connection error. */
	reply = run(&daemon, "http.get", "{\"url\":\"http://127.0.0.1:1/\"}");
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

START_TEST(test_a_body_past_max_size_fails_the_job)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char args[256], base[64];
	http_server_url(server, base, 64);
	snprintf(args, sizeof(args), "{\"url\":\"%s/large?bytes=2000000\"}", base);
	json_t *reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "ResponseTooLarge");
	json_decref(reply);
	snprintf(args, sizeof(args), "{\"url\":\"%s/large?bytes=2000000\",\"max_size\":2000000}", base);
	reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "done");
	ck_assert_uint_eq(strlen(wire_text(json_object_get(reply, "result"), "body")), 2000000);
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

START_TEST(test_timeout_fails_the_job_and_hangs_up)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char args[256], base[64];
	snprintf(args, sizeof(args), "{\"url\":\"%s/slow?ms=20000\",\"timeout\":0.3}",
	         http_server_url(server, base, 64));
	json_t *reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "Timeout");
	json_decref(reply);
	wait_until(http_server_aborted, server, 1, "requests the server saw hung up");
	/* The job's own timeout ends the transfer the same way. */
	reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"http.get\",\"args\":{\"url\":\"%s/slow?ms=20000\"},"
	                         "\"timeout\":0.3,\"wait\":30}", base);
	ck_assert_str_eq(wire_error_type(reply), "Timeout");
	json_decref(reply);
	wait_until(http_server_aborted, server, 2, "requests the server saw hung up");
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

START_TEST(test_cancel_aborts_the_request_on_the_wire)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char base[64];
	json_t *reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"http.get\",\"args\":{\"url\":\"%s/slow?ms=30000\"}}",
	                     http_server_url(server, base, 64));
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	wait_until(http_server_slow_in_flight, server, 1, "slow requests the server holds");
	reply = wire_callf(daemon.url, "{\"op\":\"cancel\",\"id\":%lld}", (long long)id);
	ck_assert(json_is_true(json_object_get(reply, "ok")));
	json_decref(reply);
	wait_until(http_server_aborted, server, 1, "requests the server saw hung up");
	reply = wire_callf(daemon.url, "{\"op\":\"result\",\"id\":%lld,\"timeout\":10}", (long long)id);
	ck_assert_str_eq(wire_text(reply, "state"), "cancelled");
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

START_TEST(test_connections_are_reused_across_jobs)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	const char *const one_worker[] = {"--workers", "1", NULL};
	fixture_start(&daemon, one_worker);
	char args[256], base[64];
	snprintf(args, sizeof(args), "{\"url\":\"%s/peer\"}", http_server_url(server, base, 64));
	json_t *first = run(&daemon, "http.get", args);
	json_t *second = run(&daemon, "http.get", args);
	json_t *third = run(&daemon, "http.get", args);
	const char *port = wire_text(json_object_get(first, "result"), "body");
	ck_assert_str_eq(wire_text(json_object_get(second, "result"), "body"), port);
	ck_assert_str_eq(wire_text(json_object_get(third, "result"), "body"), port);
	ck_assert_int_eq(http_server_connections(server), 1);
	json_decref(first);
	json_decref(second);
	json_decref(third);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

/* Makes a CA and a certificate it signs for 127.0.0.1 in directory. */
static void make_certificates(const char *directory)
{
	char command[2048];
	snprintf(command, sizeof(command),
	         "cd %s && printf 'subjectAltName=IP:127.0.0.1\\n' > ext && "
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
	         "-out ca.pem -days 1 -subj /CN=weft-test-ca && "
	         "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key "
	         "-out server.csr -subj /CN=127.0.0.1 && "
	         "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem "
	         "-days 1 -extfile ext",
	         directory);
	ck_assert_msg(as_user_shell(command) == 0, "openssl could not make the test certificates");
}

/* TLS is verified: a server signed by a CA the job names is trusted, the same
 * server without it is not. */
START_TEST(test_tls_is_verified_against_the_system_or_the_jobs_ca)
{
	char directory[] = "/tmp/weft-tls-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	make_certificates(directory);
	char certificate[128], key[128], ca_path[128];
	snprintf(certificate, sizeof(certificate), "%s/server.pem", directory);
	snprintf(key, sizeof(key), "%s/server.key", directory);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", directory);
	struct http_server *server = http_server_start_tls(certificate, key);
	fixture daemon;
	fixture_start(&daemon, NULL);
	char base[64], url[128];
	snprintf(url, sizeof(url), "%s/hello", http_server_url(server, base, 64));
	char plain[200];
	snprintf(plain, sizeof(plain), "{\"url\":\"%s\"}", url);
	json_t *refused = run(&daemon, "http.get", plain);
	ck_assert_str_eq(wire_text(refused, "state"), "failed");
	ck_assert_str_eq(wire_error_type(refused), "TLSError");
	json_decref(refused);
	FILE *file = fopen(ca_path, "r");
	char pem[8192];
	size_t length = fread(pem, 1, sizeof(pem) - 1, file);
	pem[length] = '\0';
	fclose(file);
	json_t *args = json_pack("{s:s, s:s}", "url", url, "ca_pem", pem);
	char *text_args = json_dumps(args, 0);
	json_t *reply = run(&daemon, "http.get", text_args);
	ck_assert_msg(strcmp(wire_text(reply, "state"), "done") == 0, "%s", json_dumps(reply, 0));
	ck_assert_str_eq(wire_text(json_object_get(reply, "result"), "body"), "hello");
	free(text_args);
	json_decref(args);
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
	char command[128];
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	as_user_shell(command);
}
END_TEST

/* A connection kept for one user's jobs never carries another user's request. */
START_TEST(test_connections_are_pooled_per_owner)
{
	SERVERS_SKIP_UNLESS_TRUSTED(&servers);
	struct http_server *server = http_server_start();
	fixture daemon;
	const char *const one_worker[] = {"--workers", "1", NULL};
	fixture_start(&daemon, one_worker);
	chmod(daemon.directory, 0755);
	char args[256], base[64], request[512];
	snprintf(args, sizeof(args), "{\"url\":\"%s/peer\"}", http_server_url(server, base, 64));
	json_t *first = run(&daemon, "http.get", args);
	snprintf(request, sizeof(request), "{\"op\":\"submit\",\"fn\":\"http.get\",\"args\":%s,\"wait\":30}",
	         args);
	json_t *theirs = servers_call_as(&servers, daemon.url, request);
	json_t *again = run(&daemon, "http.get", args);
	const char *port = wire_text(json_object_get(first, "result"), "body");
	ck_assert_str_eq(wire_text(json_object_get(again, "result"), "body"), port);
	ck_assert_str_ne(wire_text(json_object_get(theirs, "result"), "body"), port);
	ck_assert_int_eq(http_server_connections(server), 2);
	json_decref(first);
	json_decref(theirs);
	json_decref(again);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

START_TEST(test_a_thousand_concurrent_gets_take_no_thread)
{
	enum { COUNT = 1000 };
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char base[64], args[256];
	http_server_url(server, base, 64);
	/* One transfer on each worker first, so both pools exist. */
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\"}", base);
	for (int i = 0; i < 4; i++)
		json_decref(run(&daemon, "http.get", args));
	json_int_t before = fixture_threads(&daemon);
	size_t size = COUNT * 128 + 64, used = 0;
	char *request = malloc(size);
	used += (size_t)snprintf(request + used, size - used, "{\"op\":\"submit\",\"jobs\":[");
	for (int i = 0; i < COUNT; i++)
		used += (size_t)snprintf(request + used, size - used,
		                         "%s{\"fn\":\"http.get\",\"args\":{\"url\":\"%s/hold?until=%d\"}}",
		                         i == 0 ? "" : ",", base, COUNT);
	used += (size_t)snprintf(request + used, size - used, "]}");
	json_t *reply = wire_call(daemon.url, request);
	free(request);
	json_t *ids = json_object_get(reply, "ids");
	ck_assert_uint_eq(json_array_size(ids), COUNT);
	/* The server answers none until all of them wait on it at once; the
	 * daemon's threads are counted all the while. */
	double deadline = fixture_now() + 60;
	json_int_t most = before;
	while (http_server_released(server) < COUNT && fixture_now() < deadline) {
		json_int_t now = fixture_threads(&daemon);
		if (now > most)
			most = now;
	}
	ck_assert_msg(http_server_released(server) == COUNT,
	              "the server held %d requests at most, not %d", http_server_slow_in_flight(server),
	              COUNT);
	ck_assert_int_eq(most, before);
	json_t *results = wire_results(daemon.url, ids);
	json_t *list = json_object_get(results, "results");
	for (size_t i = 0; i < COUNT; i++) {
		json_t *one = json_array_get(list, i);
		ck_assert_msg(strcmp(wire_text(one, "state"), "done") == 0, "job %zu: %s", i, json_dumps(one, 0));
		ck_assert_str_eq(wire_text(json_object_get(one, "result"), "body"), "held");
	}
	ck_assert_int_eq(fixture_threads(&daemon), before);
	json_decref(results);
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

static off_t size_of(const char *path)
{
	struct stat status;
	return lstat(path, &status) == 0 ? status.st_size : -1;
}

static void write_file(const char *path, const char *content, mode_t mode)
{
	FILE *file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	fputs(content, file);
	fclose(file);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void assert_content(const char *path, const char *content)
{
	char buffer[256] = "";
	FILE *file = fopen(path, "r");
	ck_assert_ptr_nonnull(file);
	size_t n = fread(buffer, 1, sizeof(buffer) - 1, file);
	buffer[n] = '\0';
	fclose(file);
	ck_assert_str_eq(buffer, content);
}

/* save_to as the daemon's own user: the body lands in a new file, never over
 * an existing name, and a failed download leaves nothing behind. */
START_TEST(test_save_to_writes_the_body_to_a_new_file)
{
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	char args[1024], base[64], path[512], other[512];
	http_server_url(server, base, 64);
	snprintf(path, sizeof(path), "%s/download", daemon.directory);
	snprintf(args, sizeof(args), "{\"url\":\"%s/large?bytes=300000\",\"save_to\":\"%s\"}", base,
	         path);
	json_t *reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "done");
	json_t *result = json_object_get(reply, "result");
	ck_assert_str_eq(wire_text(result, "saved_to"), path);
	ck_assert_int_eq(json_integer_value(json_object_get(result, "bytes")), 300000);
	ck_assert_ptr_null(json_object_get(result, "body"));
	ck_assert_int_eq(json_integer_value(json_object_get(result, "status")), 200);
	ck_assert_int_eq(size_of(path), 300000);
	json_decref(reply);
	/* The name exists now: refused, and the file is left as it was. */
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\",\"save_to\":\"%s\"}", base, path);
	reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "FileExistsError");
	ck_assert_int_eq(size_of(path), 300000);
	json_decref(reply);
	/* Past max_size: the job fails and the partial file is removed. */
	snprintf(other, sizeof(other), "%s/too-big", daemon.directory);
	snprintf(args, sizeof(args),
	         "{\"url\":\"%s/large?bytes=300000\",\"save_to\":\"%s\",\"max_size\":1000}", base, other);
	reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_error_type(reply), "ResponseTooLarge");
	ck_assert_int_eq(size_of(other), -1);
	json_decref(reply);
	/* With save_to, max_size may pass the in-memory ceiling. */
	snprintf(args, sizeof(args),
	         "{\"url\":\"%s/large?bytes=2000\",\"save_to\":\"%s\",\"max_size\":100000000}", base, other);
	reply = run(&daemon, "http.request", args);
	ck_assert_str_eq(wire_text(reply, "state"), "done");
	ck_assert_int_eq(size_of(other), 2000);
	json_decref(reply);
	/* A FIFO at the name is never opened (the job does not hang on it). */
	snprintf(other, sizeof(other), "%s/fifo", daemon.directory);
	ck_assert_int_eq(mkfifo(other, 0600), 0);
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\",\"save_to\":\"%s\"}", base, other);
	reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	json_decref(reply);
	/* A cancelled download removes its file: created at start, gone after. */
	snprintf(other, sizeof(other), "%s/cancelled", daemon.directory);
	reply = wire_callf(daemon.url,
	             "{\"op\":\"submit\",\"fn\":\"http.get\",\"args\":{\"url\":\"%s/slow?ms=30000\","
	             "\"save_to\":\"%s\"}}",
	             base, other);
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	wait_until(http_server_slow_in_flight, server, 1, "slow requests the server holds");
	ck_assert_int_eq(size_of(other), 0);
	reply = wire_callf(daemon.url, "{\"op\":\"cancel\",\"id\":%lld}", (long long)id);
	json_decref(reply);
	reply = wire_callf(daemon.url, "{\"op\":\"result\",\"id\":%lld,\"timeout\":10}", (long long)id);
	ck_assert_str_eq(wire_text(reply, "state"), "cancelled");
	json_decref(reply);
	wait_until(http_server_aborted, server, 1, "requests the server saw hung up");
	ck_assert_int_eq(size_of(other), -1);
	/* A missing directory, and paths refused at submit. */
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\",\"save_to\":\"%s/none/x\"}", base,
	         daemon.directory);
	reply = run(&daemon, "http.get", args);
	ck_assert_str_eq(wire_error_type(reply), "FileNotFoundError");
	json_decref(reply);
	static const char *const refused[] = {"\"relative/file\"", "\"/tmp/dir/\"", "\"\"", "42"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		reply = wire_callf(daemon.url,
		             "{\"op\":\"submit\",\"fn\":\"http.get\",\"args\":{\"url\":\"%s/hello\",\"save_to\":%s}}",
		             base, refused[i]);
		ck_assert_msg(wire_error_code(reply) != NULL &&
		                      strcmp(wire_error_code(reply), "bad_arguments") == 0,
		              "save_to %s was not refused: %s", refused[i], json_dumps(reply, 0));
		json_decref(reply);
	}
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

/* The stranger's submit of http.get with args; returns the reply. */
static json_t *save_as_stranger(const fixture *daemon, const char *args)
{
	char request[2048];
	snprintf(request, sizeof(request), "{\"op\":\"submit\",\"fn\":\"http.get\",\"args\":%s,\"wait\":30}",
	         args);
	return servers_call_as(&servers, daemon->url, request);
}

/* A root daemon creates save_to with the submitter's rights: the stranger
 * writes where it may and nowhere else, and gets the file. */
START_TEST(test_save_to_has_the_submitters_rights)
{
	SERVERS_SKIP_UNLESS_TRUSTED(&servers);
	struct http_server *server = http_server_start();
	fixture daemon;
	fixture_start(&daemon, NULL);
	chmod(daemon.directory, 0755);
	char args[1024], base[64], theirs[512], path[512], root_only[512], secret[512], link[512];
	http_server_url(server, base, 64);
	snprintf(theirs, sizeof(theirs), "%s/theirs", daemon.directory);
	ck_assert_int_eq(mkdir(theirs, 0700), 0);
	ck_assert_int_eq(chown(theirs, servers.stranger.uid, servers.stranger.gid), 0);
	/* Into their own directory: done, and the file is theirs. */
	snprintf(path, sizeof(path), "%s/file", theirs);
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\",\"save_to\":\"%s\"}", base, path);
	json_t *reply = save_as_stranger(&daemon, args);
	ck_assert_msg(strcmp(wire_text(reply, "state"), "done") == 0, "%s", json_dumps(reply, 0));
	struct stat status;
	ck_assert_int_eq(lstat(path, &status), 0);
	ck_assert_uint_eq(status.st_uid, servers.stranger.uid);
	ck_assert_uint_eq(status.st_gid, servers.stranger.gid);
	assert_content(path, "hello");
	json_decref(reply);
	/* Into a directory only root may write to. */
	snprintf(root_only, sizeof(root_only), "%s/root-only", daemon.directory);
	ck_assert_int_eq(mkdir(root_only, 0755), 0);
	snprintf(path, sizeof(path), "%s/file", root_only);
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\",\"save_to\":\"%s\"}", base, path);
	reply = save_as_stranger(&daemon, args);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "PermissionError");
	ck_assert_int_eq(size_of(path), -1);
	json_decref(reply);
	/* Over a root file, like /etc/passwd: in a root directory, and in a
	 * directory everyone may write to (sticky, like /tmp). */
	snprintf(secret, sizeof(secret), "%s/passwd", root_only);
	write_file(secret, "root:x:0:0", 0644);
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\",\"save_to\":\"%s\"}", base, secret);
	reply = save_as_stranger(&daemon, args);
	ck_assert_str_eq(wire_error_type(reply), "PermissionError");
	assert_content(secret, "root:x:0:0");
	json_decref(reply);
	char shared[512], planted[600];
	snprintf(shared, sizeof(shared), "%s/shared", daemon.directory);
	ck_assert_int_eq(mkdir(shared, 0777), 0);
	ck_assert_int_eq(chmod(shared, 01777), 0);
	snprintf(planted, sizeof(planted), "%s/passwd", shared);
	write_file(planted, "root:x:0:0", 0666);
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\",\"save_to\":\"%s\"}", base, planted);
	reply = save_as_stranger(&daemon, args);
	ck_assert_str_eq(wire_error_type(reply), "PermissionError");
	assert_content(planted, "root:x:0:0");
	json_decref(reply);
	/* A symlink of theirs pointing at a root file is not followed. */
	snprintf(secret, sizeof(secret), "%s/secret", root_only);
	write_file(secret, "secret", 0600);
	snprintf(link, sizeof(link), "%s/link", theirs);
	ck_assert_int_eq(symlink(secret, link), 0);
	ck_assert_int_eq(lchown(link, servers.stranger.uid, servers.stranger.gid), 0);
	snprintf(args, sizeof(args), "{\"url\":\"%s/hello\",\"save_to\":\"%s\"}", base, link);
	reply = save_as_stranger(&daemon, args);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "FileExistsError");
	assert_content(secret, "secret");
	ck_assert_int_eq(lstat(secret, &status), 0);
	ck_assert_uint_eq(status.st_uid, 0);
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

static Suite *http_suite(void)
{
	Suite *suite = suite_create("http");
	TCase *http = tcase_create("http");
	tcase_set_timeout(http, 60);
	tcase_add_test(http, test_get_returns_status_headers_and_text_body);
	tcase_add_test(http, test_binary_body_comes_as_base64);
	tcase_add_test(http, test_redirects_are_followed_unless_told_not_to);
	tcase_add_test(http, test_only_http_and_https_are_reachable);
	tcase_add_test(http, test_bad_arguments_are_refused_at_submit);
	tcase_add_test(http, test_request_sends_method_headers_and_body);
	tcase_add_test(http, test_server_error_is_a_status_or_with_raise_for_status_a_failure);
	tcase_add_test(http, test_a_body_past_max_size_fails_the_job);
	tcase_add_test(http, test_timeout_fails_the_job_and_hangs_up);
	tcase_add_test(http, test_cancel_aborts_the_request_on_the_wire);
	tcase_add_test(http, test_connections_are_reused_across_jobs);
	tcase_add_test(http, test_connections_are_pooled_per_owner);
	tcase_add_test(http, test_tls_is_verified_against_the_system_or_the_jobs_ca);
	tcase_add_test(http, test_save_to_writes_the_body_to_a_new_file);
	tcase_add_test(http, test_save_to_has_the_submitters_rights);
	suite_add_tcase(suite, http);
	TCase *load = tcase_create("load");
	tcase_set_timeout(load, 180);
	tcase_add_test(load, test_a_thousand_concurrent_gets_take_no_thread);
	suite_add_tcase(suite, load);
	return suite;
}

int main(void)
{
	/* The other user must reach the fixture's socket: keep it under /tmp. */
	setenv("TMPDIR", "/tmp", 1);
	servers_suite_begin(&servers, "wth", 0, NULL, 2, "http per-owner pool and save_to rights tests");
	SRunner *runner = srunner_create(http_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	servers_suite_end(&servers);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
