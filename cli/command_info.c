/* weft ping, ls, stats, functions and request: the commands about the daemon. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

/* Parses a command that takes only the global options and no arguments.
 * Returns -1 to go on, or the exit code to return. */
static int parse_plain(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int exit_code = cli_parse_global_options(command, globals, argc, argv);
	if (exit_code != CLI_OPTION_HANDLED)
		return exit_code;
	if (optind < argc)
		return cli_usage_error(command, "takes no arguments ('%s')", argv[optind]);
	return -1;
}

/* ----------------------------------------------------------------- ping */

static double now_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static int run_ping(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int exit_code = parse_plain(command, globals, argc, argv);
	if (exit_code >= 0)
		return exit_code;
	weft_client *client = NULL;
	if ((exit_code = cli_connect(globals, &client)) != 0)
		return exit_code;
	json_t *reply = NULL;
	double started = now_seconds();
	if (weft_ping(client, &reply) != 0) {
		exit_code = cli_report_error(globals);
	} else if (globals->json) {
		json_object_del(reply, "ok");
		cli_print_json(reply);
	} else {
		printf("weftd %s at %s: protocol %lld, max message %lld bytes, round trip %.3f ms\n",
		       json_string_value(json_object_get(reply, "version")), weft_client_url(client),
		       (long long)json_integer_value(json_object_get(reply, "protocol")),
		       (long long)json_integer_value(json_object_get(reply, "max_message")),
		       (now_seconds() - started) * 1000);
	}
	json_decref(reply);
	weft_close(client);
	return exit_code;
}

const cli_command cli_command_ping = {
	.name = "ping",
	.usage = "",
	.summary = "check that weftd answers; print its version",
	.help = "Exit code 0 when the daemon answers, 3 when it cannot be reached.\n",
	.run = run_ping,
};

/* ------------------------------------------------------------------- ls */

static void print_labels(const json_t *labels)
{
	const char *key;
	json_t *value;
	bool first = true;
	json_object_foreach((json_t *)labels, key, value)
	{
		printf("%s%s=%s", first ? "" : ",", key, json_string_value(value));
		first = false;
	}
	if (first)
		printf("-");
}

/* What an exec job runs (its argv, or its shell line), else the function's
 * name, cut to fit a column. */
static void describe_job(const json_t *job, char *text, size_t size)
{
	const char *fn = json_string_value(json_object_get(job, "fn"));
	const json_t *args = json_object_get(job, "args");
	const json_t *argv = json_object_get(args, "argv");
	const char *shell = json_string_value(json_object_get(args, "shell"));
	snprintf(text, size, "%s", fn != NULL ? fn : "-");
	if (fn == NULL || strcmp(fn, "exec") != 0)
		return;
	if (shell != NULL) {
		snprintf(text, size, "sh -c %s", shell);
	} else if (json_is_array(argv)) {
		size_t used = 0, index;
		json_t *word;
		text[0] = '\0';
		json_array_foreach(argv, index, word)
		{
			int wrote = snprintf(text + used, size - used, "%s%s", index > 0 ? " " : "",
			                     json_is_string(word) ? json_string_value(word) : "?");
			if (wrote < 0 || (size_t)wrote >= size - used)
				break;
			used += (size_t)wrote;
		}
	}
	for (char *c = text; *c != '\0'; c++)
		if (*c == '\n' || *c == '\t')
			*c = ' ';
	if (strlen(text) > 40)
		strcpy(text + 37, "...");
}

static void print_job_row(const json_t *job, double now)
{
	json_t *started = json_object_get(job, "started");
	json_t *finished = json_object_get(job, "finished");
	char runtime[32] = "-";
	if (json_is_number(started)) {
		double end = json_is_number(finished) ? json_number_value(finished) : now;
		snprintf(runtime, sizeof(runtime), "%.3f", end - json_number_value(started));
	}
	char owner[32] = "-";
	const char *owner_name = json_string_value(json_object_get(job, "owner_name"));
	if (owner_name != NULL)
		snprintf(owner, sizeof(owner), "%.10s", owner_name);
	else if (json_is_integer(json_object_get(job, "owner")))
		snprintf(owner, sizeof(owner), "%lld",
		         (long long)json_integer_value(json_object_get(job, "owner")));
	char created[32] = "-";
	json_t *created_at = json_object_get(job, "created");
	if (json_is_number(created_at)) {
		time_t when = (time_t)json_number_value(created_at);
		struct tm local;
		if (localtime_r(&when, &local) != NULL)
			strftime(created, sizeof(created), "%m-%d %H:%M:%S", &local);
	}
	char what[48];
	describe_job(job, what, sizeof(what));
	printf("%-8lld %-10s %-10s %-14s %10s  %-40s ",
	       (long long)json_integer_value(json_object_get(job, "id")),
	       json_string_value(json_object_get(job, "state")), owner, created, runtime, what);
	print_labels(json_object_get(job, "labels"));
	printf("\n");
}

static int run_ls(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	static const struct option options[] = {
		{"state", required_argument, NULL, 's'},
		{"fn", required_argument, NULL, 'f'},
		{"label", required_argument, NULL, 'l'},
		{"limit", required_argument, NULL, 'n'},
		{"after", required_argument, NULL, 'a'},
		{"before", required_argument, NULL, 'b'},
		{"oldest", no_argument, NULL, 'o'},
		CLI_GLOBAL_OPTIONS,
	};
	json_t *filter = json_object();
	json_t *labels = json_object();
	int exit_code = CLI_EXIT_USAGE;
	int option;
	while ((option = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		long long number;
		uint64_t id;
		switch (option) {
		case 's':
			if (weft_state_from_name(optarg) == WEFT_STATE_UNKNOWN) {
				cli_usage_error(command, "--state takes waiting, queued, running, pending, "
				                         "done, failed or cancelled");
				goto done;
			}
			json_object_set_new(filter, "state", json_string(optarg));
			break;
		case 'f':
			if (json_object_set_new(filter, "fn", json_string(optarg)) != 0) {
				cli_usage_error(command, "--fn takes a function name in UTF-8 text");
				goto done;
			}
			break;
		case 'l':
			if (cli_add_label(command, optarg, "team=ci", labels) != 0)
				goto done;
			break;
		case 'n':
			if (!cli_parse_count(optarg, 10000, &number)) {
				cli_usage_error(command, "--limit takes a number from 1 to 10000");
				goto done;
			}
			json_object_set_new(filter, "limit", json_integer(number));
			break;
		case 'a':
			if (!cli_parse_id(optarg, &id)) {
				cli_usage_error(command, "--after takes a job id");
				goto done;
			}
			json_object_set_new(filter, "after", json_integer((json_int_t)id));
			break;
		case 'b':
			if (!cli_parse_id(optarg, &id)) {
				cli_usage_error(command, "--before takes a job id");
				goto done;
			}
			json_object_set_new(filter, "before", json_integer((json_int_t)id));
			break;
		case 'o':
			json_object_set_new(filter, "order", json_string("oldest"));
			break;
		default: {
			int common = cli_common_option(command, globals, option, argc, argv);
			if (common != CLI_OPTION_HANDLED) {
				exit_code = common;
				goto done;
			}
		}
		}
	}
	if (optind < argc) {
		cli_usage_error(command, "takes no arguments ('%s')", argv[optind]);
		goto done;
	}
	if (json_object_size(labels) > 0)
		json_object_set(filter, "labels", labels);
	weft_client *client = NULL;
	if ((exit_code = cli_connect(globals, &client)) != 0)
		goto done;
	json_t *jobs = NULL;
	bool more = false;
	uint64_t cursor = 0;
	bool oldest = json_object_get(filter, "order") != NULL ||
	              (json_object_get(filter, "after") != NULL &&
	               json_object_get(filter, "before") == NULL);
	if (weft_list_page(client, filter, &jobs, &more, &cursor) != 0) {
		exit_code = cli_report_error(globals);
	} else if (globals->json) {
		json_t *document = json_pack("{s:O, s:b, s:I}", "jobs", jobs, "more", more,
		                             oldest ? "after" : "before", (json_int_t)cursor);
		cli_print_json(document);
		json_decref(document);
	} else {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		double seconds = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
		printf("%-8s %-10s %-10s %-14s %10s  %-40s %s\n", "ID", "STATE", "OWNER", "CREATED",
		       "RUNTIME", "WHAT", "LABELS");
		/* As ps and pueue show them: the newest at the bottom, next to the prompt. */
		size_t count = json_array_size(jobs);
		for (size_t i = 0; i < count; i++)
			print_job_row(json_array_get(jobs, oldest ? i : count - 1 - i), seconds);
		if (more)
			fprintf(stderr, "(more jobs: weft ls %s %llu)\n", oldest ? "--after" : "--before",
			        (unsigned long long)cursor);
	}
	json_decref(jobs);
	weft_close(client);
done:
	json_decref(labels);
	json_decref(filter);
	return exit_code;
}

const cli_command cli_command_ls = {
	.name = "ls",
	.usage = "[--state S] [--fn F] [--label K=V]... [--limit N] [--before ID | --after ID] "
	         "[--oldest]",
	.summary = "list jobs as a table, the newest at the bottom",
	.help = "  --state S      only jobs in state S (waiting, queued, running, pending, done,\n"
	        "                 failed, cancelled)\n"
	        "  --fn F         only calls of function F\n"
	        "  --label K=V    only jobs with this label (repeatable: all must match)\n"
	        "  --limit N      at most N jobs (1 to 10000; the daemon's default is 1000)\n"
	        "  --before ID    only jobs older than ID (to page back)\n"
	        "  --after ID     only jobs newer than ID, oldest first (to page on)\n"
	        "  --oldest       the oldest jobs first instead of the newest\n\n"
	        "Shows the newest jobs, the newest at the bottom. WHAT is the command of an\n"
	        "exec job, else the function. RUNTIME is seconds from start to finish (or to\n"
	        "now). With --json prints {\"jobs\": [job objects, newest first],\n"
	        "\"more\": bool, \"before\"|\"after\": the cursor to go on from}.\n",
	.run = run_ls,
};

/* ---------------------------------------------------------------- stats */

static void print_stats(const json_t *stats)
{
	printf("weftd %s, up %.1f s\n", json_string_value(json_object_get(stats, "version")),
	       json_number_value(json_object_get(stats, "uptime")));
	const char *key;
	json_t *value;
	printf("jobs:");
	json_object_foreach(json_object_get(stats, "jobs"), key, value)
		printf(" %s %lld", key, (long long)json_integer_value(value));
	printf("\n");
	size_t index;
	json_t *worker;
	json_array_foreach(json_object_get(stats, "workers"), index, worker)
	{
		printf("worker %lld:", (long long)json_integer_value(json_object_get(worker, "id")));
		json_object_foreach(worker, key, value)
			if (strcmp(key, "id") != 0)
				printf(" %s %lld", key, (long long)json_integer_value(value));
		printf("\n");
	}
	json_object_foreach((json_t *)stats, key, value)
	{
		if (strcmp(key, "version") == 0 || strcmp(key, "uptime") == 0 ||
		    strcmp(key, "jobs") == 0 || strcmp(key, "workers") == 0)
			continue;
		printf("%s: ", key);
		cli_print_json(value);
	}
}

static int run_stats(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int exit_code = parse_plain(command, globals, argc, argv);
	return exit_code >= 0 ? exit_code : cli_fetch_and_print(globals, weft_stats, print_stats);
}

const cli_command cli_command_stats = {
	.name = "stats",
	.usage = "",
	.summary = "show the daemon's counters: jobs by state, workers, memory",
	.help = "With --json prints the stats object of the protocol.\n",
	.run = run_stats,
};

/* ------------------------------------------------------------ functions */

static void print_functions(const json_t *functions)
{
	size_t index;
	json_t *function;
	json_array_foreach(functions, index, function)
	{
		printf("%-16s %-8s %s\n", json_string_value(json_object_get(function, "name")),
		       json_string_value(json_object_get(function, "executor")),
		       json_string_value(json_object_get(function, "summary")));
		const char *key;
		json_t *value;
		json_object_foreach(json_object_get(function, "args"), key, value)
			printf("    %-12s %s\n", key, json_string_value(value));
	}
}

static int run_functions(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int exit_code = parse_plain(command, globals, argc, argv);
	return exit_code >= 0 ? exit_code
	                      : cli_fetch_and_print(globals, weft_functions, print_functions);
}

const cli_command cli_command_functions = {
	.name = "functions",
	.usage = "",
	.summary = "list the functions jobs can call, with their arguments",
	.help = "With --json prints the array of the protocol's functions op.\n",
	.run = run_functions,
};

/* -------------------------------------------------------------- request */

static int run_request(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	static const struct option options[] = {
		{"raw", no_argument, NULL, 'r'},
		{"wait", required_argument, NULL, 'w'},
		CLI_GLOBAL_OPTIONS,
	};
	bool raw = false;
	double reply_wait = -1;
	int option;
	while ((option = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (option) {
		case 'r':
			raw = true;
			break;
		case 'w':
			if (!cli_parse_seconds(optarg, &reply_wait))
				return cli_usage_error(command, "--wait takes seconds >= 0");
			break;
		default: {
			int exit_code = cli_common_option(command, globals, option, argc, argv);
			if (exit_code != CLI_OPTION_HANDLED)
				return exit_code;
		}
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(command, "give the request as one argument");
	const char *text = argv[optind];
	json_t *request = NULL;
	if (!raw) {
		int exit_code = cli_parse_json_object(command, "the request", text, &request);
		if (exit_code != 0)
			return exit_code;
	}
	weft_client *client = NULL;
	int exit_code = cli_connect(globals, &client);
	if (exit_code != 0) {
		json_decref(request);
		return exit_code;
	}
	json_t *reply = NULL;
	int rv = raw ? weft_request_bytes(client, text, strlen(text), reply_wait, &reply)
	             : weft_request(client, request, reply_wait, &reply);
	if (rv != 0) {
		exit_code = cli_report_error(globals);
	} else {
		cli_print_json(reply);
		if (!json_is_true(json_object_get(reply, "ok"))) {
			json_t *error = json_object_get(reply, "error");
			const char *code = json_string_value(json_object_get(error, "code"));
			const char *message = json_string_value(json_object_get(error, "message"));
			fprintf(stderr, "weft: %s\n", message != NULL ? message : "the reply says ok=false");
			exit_code = cli_exit_code(weft_error_from_code(code));
			if (exit_code == CLI_EXIT_USAGE || exit_code == CLI_EXIT_OK)
				exit_code = CLI_EXIT_ERROR;
		}
	}
	json_decref(reply);
	json_decref(request);
	weft_close(client);
	return exit_code;
}

const cli_command cli_command_request = {
	.name = "request",
	.usage = "[--raw] [--wait S] REQUEST",
	.summary = "send one protocol request as given and print the reply (for debugging)",
	.help = "REQUEST is a JSON object such as '{\"op\": \"ping\"}' ('-' reads stdin,\n"
	        "'@FILE' a file); --raw sends the text as it is, even when it is not JSON.\n"
	        "  --wait S       the daemon may take S seconds to answer on purpose (a long\n"
	        "                 poll); default: no limit\n\n"
	        "Prints the reply as it came. Exit code 0 when it says ok; otherwise the exit\n"
	        "code of its error (timeout 4, connection 3, any other 5).\n",
	.run = run_request,
};
