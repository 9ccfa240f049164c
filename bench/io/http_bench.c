/*
 * Issue 15's HTTP benchmark: N concurrent GETs of a local endpoint that
 * answers after 100 ms (tests/http_server.c), through weft's http.get on a
 * private weftd (2 workers), and through the seed's Python peers (aiohttp +
 * asyncio; requests + run_in_executor) when python3-aiohttp/-requests are
 * installed. Prints wall time and peak RSS of each.
 * Usage: http_bench [N]   (WEFTD and WEFT_SOURCE set, as bench/run does)
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fixture.h"
#include "tests/http_server.h"
#include "tests/wire.h"

static long peak_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *file = fopen(path, "r");
	long kib = -1;
	while (file != NULL && fgets(line, sizeof(line), file) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	if (file != NULL)
		fclose(file);
	return kib;
}

/* Runs a Python peer; prints its line of the table and its RESULT line
 * (bench/run collects those; bench/table.awk makes medians and ratios). */
static void peer(const char *name, const char *impl, const char *script, const char *url, int count)
{
	char source[512], number[16];
	snprintf(source, sizeof(source), "%s/bench/io/%s", getenv("WEFT_SOURCE"), script);
	snprintf(number, sizeof(number), "%d", count);
	int out[2];
	if (pipe(out) != 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		/* Debian's python3, which python3-aiohttp and python3-requests serve. */
		const char *python = getenv("PYTHON") != NULL ? getenv("PYTHON") : "/usr/bin/python3";
		execl(python, python, source, url, number, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	char text[64] = "";
	size_t length = 0;
	for (;;) {
		ssize_t got = read(out[0], text + length, sizeof(text) - 1 - length);
		if (got > 0)
			length += (size_t)got;
		else if (got == 0 || errno != EINTR || length == sizeof(text) - 1)
			break;
	}
	text[length] = '\0';
	close(out[0]);
	int status;
	struct rusage usage;
	wait4(pid, &status, 0, &usage);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("| %-34s | (failed: is it installed?) | |\n", name);
		printf("SKIP: 1 %s: it failed (is it installed?)\n", name);
		return;
	}
	double seconds = strtod(text, NULL);
	printf("| %-34s | %8.3f | %8ld |\n", name, seconds, usage.ru_maxrss);
	if (seconds > 0)
		printf("RESULT bench=http_get_100ms impl=%s n=%d secs=%.3f rate=%.0f rss_kb=%ld\n", impl, count,
		       seconds, count / seconds, usage.ru_maxrss);
}

static int count = 1000;

/* A Check test, run without forking, since the fixture asserts with Check. */
START_TEST(bench)
{
	struct http_server *server = http_server_start();
	char base[64], url[128];
	http_server_url(server, base, sizeof(base));
	snprintf(url, sizeof(url), "%s/slow?ms=100", base);
	fixture daemon;
	const char *const args[] = {"--log-level", "warn", NULL};
	fixture_start(&daemon, args);
	size_t size = (size_t)count * 128 + 64, used = 0;
	char *request = malloc(size);
	used += (size_t)snprintf(request + used, size - used, "{\"op\":\"submit\",\"jobs\":[");
	for (int i = 0; i < count; i++)
		used += (size_t)snprintf(request + used, size - used,
		                         "%s{\"fn\":\"http.get\",\"args\":{\"url\":\"%s\"}}", i ? "," : "", url);
	snprintf(request + used, size - used, "]}");
	double started = fixture_now();
	json_t *reply = wire_call_text(daemon.url, request, strlen(request), 60000);
	char *ids = json_dumps(json_object_get(reply, "ids"), 0);
	snprintf(request, size, "{\"op\":\"result\",\"ids\":%s,\"timeout\":120}", ids);
	json_t *results = wire_call_text(daemon.url, request, strlen(request), 130000);
	double elapsed = fixture_now() - started;
	size_t done = 0;
	json_t *list = json_object_get(results, "results");
	for (size_t i = 0; i < json_array_size(list); i++)
		done += strcmp(json_string_value(json_object_get(json_array_get(list, i), "state")), "done") == 0;
	printf("%d concurrent GETs of a 100 ms endpoint (%zu done through weft)\n\n", count, done);
	printf("| %-34s | %8s | %8s |\n", "client", "wall s", "peak KiB");
	printf("|%s|%s|%s|\n", "------------------------------------", "----------", "----------");
	long rss = peak_kib(daemon.pid);
	printf("| %-34s | %8.3f | %8ld |\n", "weft http.get (weftd, 2 workers)", elapsed, rss);
	printf("RESULT bench=http_get_100ms impl=weft n=%zu secs=%.3f rate=%.0f rss_kb=%ld\n", done, elapsed,
	       (double)done / elapsed, rss);
	peer("aiohttp + asyncio", "aiohttp", "aiohttp_get.py", url, count);
	peer("requests + run_in_executor", "requests-executor", "requests_executor.py", url, count);
	free(ids);
	free(request);
	json_decref(results);
	json_decref(reply);
	fixture_stop(&daemon);
	http_server_stop(server);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc > 1)
		count = atoi(argv[1]);
	Suite *suite = suite_create("http bench");
	TCase *one = tcase_create("http bench");
	tcase_set_timeout(one, 600);
	tcase_add_test(one, bench);
	suite_add_tcase(suite, one);
	SRunner *runner = srunner_create(suite);
	srunner_set_fork_status(runner, CK_NOFORK);
	srunner_run_all(runner, CK_SILENT);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}
