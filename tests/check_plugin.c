/*
 * Plugins end to end: weftd --plugin loads examples/plugin (a loop function
 * and a blocking one) and runs them as jobs; a plugin built for another ABI,
 * one owned by another user and one others may write are refused at start
 * with a message.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
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

static char example[PATH_MAX];
static char wrong_abi[PATH_MAX];

static void start_with_example(fixture *daemon)
{
	const char *const args[] = {"--plugin", example, NULL};
	fixture_start(daemon, args);
}

START_TEST(test_plugin_functions_are_listed_and_run)
{
	fixture daemon;
	start_with_example(&daemon);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"functions\"}");
	json_t *list = json_object_get(reply, "functions");
	bool add = false, blocking = false;
	size_t i;
	json_t *one;
	json_array_foreach(list, i, one) {
		if (strcmp(wire_text(one, "name"), "example.add") == 0) {
			add = true;
			ck_assert_str_eq(wire_text(one, "executor"), "task");
			ck_assert_ptr_nonnull(json_object_get(json_object_get(one, "args"), "delay"));
		}
		blocking = blocking || strcmp(wire_text(one, "name"), "example.blocking") == 0;
	}
	ck_assert(add && blocking);
	json_decref(reply);
	reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"example.add\",\"args\":{\"a\":1,\"b\":2,"
	                         "\"delay\":0.1},\"wait\":30}");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 3);
	json_decref(reply);
	reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"example.blocking\",\"args\":{\"seconds\":0.1},"
	                         "\"wait\":30}");
	ck_assert_str_eq(wire_text(reply, "state"), "done");
	json_t *result = json_object_get(reply, "result");
	ck_assert(json_number_value(json_object_get(result, "slept")) == 0.1);
	ck_assert_int_eq(json_integer_value(json_object_get(result, "uid")), (json_int_t)geteuid());
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_plugin_checks_arguments_at_submit)
{
	fixture daemon;
	start_with_example(&daemon);
	/* weftd checks what the plugin declared: types, required, bounds... */
	static const struct {
		const char *fn, *args, *says;
	} refused[] = {
		{"example.add", "{\"a\":\"x\",\"b\":2}", "'a' must be a number"},
		{"example.add", "{\"a\":1}", "example.add needs 'b' (a number)"},
		{"example.add", "{\"a\":1,\"b\":2,\"delay\":-1}", "'delay' must be a number from 0 to 3600 in value"},
		{"example.blocking", "{\"seconds\":61}", "'seconds' must be a number from 0 to 60"},
		{"example.blocking", "{\"seconds\":true}", "'seconds' must be a number"},
		/* ...and then the plugin's own check what no declaration can say. */
		{"example.add", "{\"a\":9223372036854775807,\"b\":1}", "would overflow"},
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		json_t *reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"%s\",\"args\":%s}", refused[i].fn,
		                     refused[i].args);
		ck_assert_msg(wire_error_code(reply) != NULL && strcmp(wire_error_code(reply), "bad_arguments") == 0,
		              "%s %s: %s", refused[i].fn, refused[i].args, json_dumps(reply, 0));
		const char *message = wire_text(json_object_get(reply, "error"), "message");
		ck_assert_msg(strstr(message, refused[i].says) != NULL, "%s %s: %s", refused[i].fn,
		              refused[i].args, message);
		json_decref(reply);
	}
	/* The functions op shows the declarations. */
	json_t *reply = wire_call(daemon.url, "{\"op\":\"functions\"}");
	json_t *one;
	size_t index;
	bool seen = false;
	json_array_foreach(json_object_get(reply, "functions"), index, one) {
		if (strcmp(wire_text(one, "name"), "example.blocking") == 0) {
			ck_assert_str_eq(wire_text(json_object_get(one, "args"), "seconds"),
			                 "number (required) from 0 to 60 in value: how long to block its thread");
			seen = true;
		}
	}
	ck_assert(seen);
	json_decref(reply);
	reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"example.add\",\"args\":{\"a\":1,\"b\":2,\"c\":3}}");
	ck_assert_str_eq(wire_error_code(reply), "bad_arguments");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_cancel_ends_a_plugins_wait)
{
	fixture daemon;
	start_with_example(&daemon);
	json_t *reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"example.add\",\"args\":{\"a\":1,\"b\":2,"
	                                 "\"delay\":600}}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	json_decref(wire_callf(daemon.url, "{\"op\":\"cancel\",\"id\":%lld}", (long long)id));
	reply = wire_callf(daemon.url, "{\"op\":\"result\",\"id\":%lld,\"timeout\":10}", (long long)id);
	ck_assert_str_eq(wire_text(reply, "state"), "cancelled");
	json_decref(reply);
	/* The worker is free: another job runs at once. */
	reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"example.add\",\"args\":{\"a\":2,\"b\":2},\"wait\":10}");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 4);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_a_thousand_waiting_loop_calls_take_no_thread)
{
	enum { COUNT = 1000 };
	fixture daemon;
	start_with_example(&daemon);
	json_decref(wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"example.add\",\"args\":{\"a\":1,\"b\":1},\"wait\":10}"));
	json_int_t before = fixture_threads(&daemon);
	size_t size = COUNT * 96 + 64, used = 0;
	char *request = malloc(size);
	used += (size_t)snprintf(request + used, size - used, "{\"op\":\"submit\",\"jobs\":[");
	for (int i = 0; i < COUNT; i++)
		used += (size_t)snprintf(request + used, size - used,
		                         "%s{\"fn\":\"example.add\",\"args\":{\"a\":%d,\"b\":1,\"delay\":1}}",
		                         i == 0 ? "" : ",", i);
	snprintf(request + used, size - used, "]}");
	json_t *reply = wire_call(daemon.url, request);
	free(request);
	json_t *ids = json_object_get(reply, "ids");
	ck_assert_uint_eq(json_array_size(ids), COUNT);
	json_t *results = wire_results(daemon.url, ids);
	json_t *list = json_object_get(results, "results");
	/* They waited together: the last one started before the first one ended. */
	double last_start = 0, first_end = 1e300;
	for (size_t i = 0; i < COUNT; i++) {
		json_t *one = json_array_get(list, i);
		ck_assert_int_eq(json_integer_value(json_object_get(one, "result")), (json_int_t)i + 1);
		json_t *job = wire_callf(daemon.url, "{\"op\":\"status\",\"id\":%lld}",
		                   (long long)json_integer_value(json_object_get(one, "id")));
		double started = json_number_value(json_object_get(json_object_get(job, "job"), "started"));
		double finished = json_number_value(json_object_get(json_object_get(job, "job"), "finished"));
		if (started > last_start)
			last_start = started;
		if (finished < first_end)
			first_end = finished;
		json_decref(job);
	}
	ck_assert_msg(last_start < first_end, "the last started at %f, after the first ended at %f",
	              last_start, first_end);
	ck_assert_int_eq(fixture_threads(&daemon), before);
	json_decref(results);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

/* Runs weftd with option path (--plugin, --plugin-dir), expecting it to
 * refuse to start; returns its log (static). */
static const char *refused_start_with(const char *option, const char *path)
{
	static char log[8192];
	char directory[] = "/tmp/weft-plugin-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	char listen[128], log_path[128];
	snprintf(listen, sizeof(listen), "ipc://%s/weft.sock", directory);
	snprintf(log_path, sizeof(log_path), "%s/weftd.log", directory);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		execl(getenv("WEFTD"), "weftd", "--listen", listen, "--state-dir", "none", "--workers", "1",
		      option, path, (char *)NULL);
		_exit(127);
	}
	double deadline = fixture_now() + 20;
	int status;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (fixture_now() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ck_abort_msg("weftd started with plugin %s", path);
		}
		usleep(10000);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "weftd exited with %d", status);
	FILE *file = fopen(log_path, "r");
	size_t got = fread(log, 1, sizeof(log) - 1, file);
	log[got] = '\0';
	fclose(file);
	unlink(log_path);
	rmdir(directory);
	return log;
}

static const char *refused_start(const char *path)
{
	return refused_start_with("--plugin", path);
}

/* A directory of root's with example.so in it, and files that are no
 * plugins: notes.txt, and .hidden.so, a second copy of the example which
 * would clash with the first if it were loaded. */
static void plugin_directory(char *directory, char *copy, size_t size)
{
	ck_assert_ptr_nonnull(mkdtemp(directory));
	ck_assert_int_eq(chmod(directory, 0755), 0);
	snprintf(copy, size, "%s/example.so", directory);
	char command[1024];
	snprintf(command, sizeof(command), "cp %s %s && cp %s %s/.hidden.so && echo hi > %s/notes.txt",
	         example, copy, example, directory, directory);
	ck_assert_int_eq(as_user_shell(command), 0);
}

static void plugin_directory_remove(const char *directory)
{
	char command[256];
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	ck_assert_int_eq(as_user_shell(command), 0);
}

START_TEST(test_a_plugin_directory_loads_every_so_in_it)
{
	char directory[] = "/tmp/weft-plugins-XXXXXX", copy[256];
	plugin_directory(directory, copy, sizeof(copy));
	fixture daemon;
	const char *const args[] = {"--plugin-dir", directory, NULL};
	fixture_start(&daemon, args);
	json_t *reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"example.add\",\"args\":{\"a\":40,\"b\":2},"
	                                 "\"wait\":30}");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 42);
	json_decref(reply);
	fixture_stop(&daemon);
	const char *log = refused_start_with("--plugin-dir", "/nonexistent/plugins");
	ck_assert_msg(strstr(log, "cannot open plugin directory") != NULL, "log: %s", log);
	plugin_directory_remove(directory);
}
END_TEST

/* Whoever can write a root daemon's plugin directory, or a plugin in it,
 * runs code as root. */
START_TEST(test_a_root_daemon_loads_a_plugin_directory_only_root_can_write)
{
	if (geteuid() != 0)
		return; /* counted as a SKIP by main */
	char directory[] = "/tmp/weft-plugins-XXXXXX", copy[256];
	plugin_directory(directory, copy, sizeof(copy));
	ck_assert_int_eq(chmod(directory, 0777), 0);
	const char *log = refused_start_with("--plugin-dir", directory);
	ck_assert_msg(strstr(log, "a root weftd loads only from a directory owned by root") != NULL, "log: %s",
	              log);
	ck_assert_int_eq(chmod(directory, 0755), 0);
	ck_assert_int_eq(chown(directory, 65534, 0), 0);
	log = refused_start_with("--plugin-dir", directory);
	ck_assert_msg(strstr(log, "owned by uid 65534") != NULL, "log: %s", log);
	ck_assert_int_eq(chown(directory, 0, 0), 0);
	ck_assert_int_eq(chown(copy, 65534, 0), 0);
	log = refused_start_with("--plugin-dir", directory);
	ck_assert_msg(strstr(log, "owned by uid 65534; a root weftd loads only plugins") != NULL, "log: %s",
	              log);
	ck_assert_int_eq(chown(copy, 0, 0), 0);
	ck_assert_int_eq(chmod(copy, 0666), 0);
	log = refused_start_with("--plugin-dir", directory);
	ck_assert_msg(strstr(log, "writable by its group or others") != NULL, "log: %s", log);
	plugin_directory_remove(directory);
}
END_TEST

START_TEST(test_a_plugin_for_another_abi_is_refused)
{
	const char *log = refused_start(wrong_abi);
	ck_assert_msg(strstr(log, "built for plugin ABI 42") != NULL, "log: %s", log);
	log = refused_start("/nonexistent/plugin.so");
	ck_assert_msg(strstr(log, "cannot open plugin") != NULL, "log: %s", log);
}
END_TEST

/* Whoever can write a root daemon's plugin runs code as root. */
START_TEST(test_a_root_daemon_loads_only_plugins_root_alone_can_write)
{
	if (geteuid() != 0)
		return; /* counted as a SKIP by main */
	char directory[] = "/tmp/weft-plugin-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	char copy[256], command[768];
	snprintf(copy, sizeof(copy), "%s/example.so", directory);
	snprintf(command, sizeof(command), "cp %s %s", example, copy);
	ck_assert_int_eq(as_user_shell(command), 0);
	ck_assert_int_eq(chown(copy, 65534, 0), 0);
	const char *log = refused_start(copy);
	ck_assert_msg(strstr(log, "owned by uid 65534") != NULL, "log: %s", log);
	ck_assert_int_eq(chown(copy, 0, 0), 0);
	ck_assert_int_eq(chmod(copy, 0664), 0);
	log = refused_start(copy);
	ck_assert_msg(strstr(log, "writable by its group or others") != NULL, "log: %s", log);
	unlink(copy);
	rmdir(directory);
}
END_TEST

int main(void)
{
	const char *build = getenv("WEFT_BUILD");
	if (build == NULL || getenv("WEFTD") == NULL) {
		as_user_skip(8, "plugin tests", "WEFT_BUILD and WEFTD are unset (make check sets them)");
		return 0;
	}
	snprintf(example, sizeof(example), "%s/examples/plugin/example.so", build);
	snprintf(wrong_abi, sizeof(wrong_abi), "%s/tests/plugins/wrong_abi.so", build);
	if (geteuid() != 0)
		as_user_skip(2, "plugin ownership tests", "not root: only a root weftd checks ownership");
	Suite *suite = suite_create("plugin");
	TCase *plugin = tcase_create("plugin");
	tcase_set_timeout(plugin, 90);
	tcase_add_test(plugin, test_plugin_functions_are_listed_and_run);
	tcase_add_test(plugin, test_plugin_checks_arguments_at_submit);
	tcase_add_test(plugin, test_cancel_ends_a_plugins_wait);
	tcase_add_test(plugin, test_a_thousand_waiting_loop_calls_take_no_thread);
	tcase_add_test(plugin, test_a_plugin_for_another_abi_is_refused);
	tcase_add_test(plugin, test_a_root_daemon_loads_only_plugins_root_alone_can_write);
	tcase_add_test(plugin, test_a_plugin_directory_loads_every_so_in_it);
	tcase_add_test(plugin, test_a_root_daemon_loads_a_plugin_directory_only_root_can_write);
	suite_add_tcase(suite, plugin);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
