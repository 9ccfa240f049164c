/*
 * weft queue set | pause | resume | ls: named queues, which let at most MAX of
 * the jobs that name them (weft call/submit/run --queue NAME) run at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Parses options (--max for set, else only the global ones). Returns -1 to go
 * on, or the exit code to leave with. */
static int parse_options(const cli_command *command, cli_globals *globals, int argc, char **argv,
                         long *max)
{
	static const struct option with_max[] = {
		{"max", required_argument, NULL, 'm'},
		CLI_GLOBAL_OPTIONS,
	};
	static const struct option without_max[] = {CLI_GLOBAL_OPTIONS};
	int option;
	while ((option = getopt_long(argc, argv, ":", max != NULL ? with_max : without_max, NULL)) !=
	       -1) {
		if (option == 'm') {
			char *end;
			*max = strtol(optarg, &end, 10);
			if (end == optarg || *end != '\0' || *max < 1 || *max > 1000000)
				return cli_usage_error(command, "--max takes how many of the queue's jobs "
				                                "may run at once, 1 to 1000000");
			continue;
		}
		int exit_code = cli_common_option(command, globals, option, argc, argv);
		if (exit_code != CLI_OPTION_HANDLED)
			return exit_code;
	}
	return -1;
}

/* Connects and runs op(client, name, value); prints "NAME WORD" (--json:
 * {"name","state"}). */
static int act(cli_globals *globals, const char *name, const char *word,
               int (*op)(weft_client *client, const char *name, long value), long value)
{
	weft_client *client = NULL;
	int exit_code = cli_connect(globals, &client);
	if (exit_code != 0)
		return exit_code;
	if (op(client, name, value) != 0) {
		exit_code = cli_report_error(globals);
	} else if (globals->json) {
		json_t *document = json_pack("{s:s, s:s}", "name", name, "state", word);
		cli_print_json(document);
		json_decref(document);
	} else {
		printf("%s %s\n", name, word);
	}
	weft_close(client);
	return exit_code;
}

static int set_op(weft_client *client, const char *name, long max)
{
	return weft_queue_set(client, name, (unsigned)max);
}

static int pause_op(weft_client *client, const char *name, long paused)
{
	return weft_queue_pause(client, name, paused != 0);
}

static int run_set(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	long max = 0;
	int exit_code = parse_options(command, globals, argc, argv, &max);
	if (exit_code >= 0)
		return exit_code;
	if (argc - optind != 1 || max == 0)
		return cli_usage_error(command, "give the queue's name and --max N");
	return act(globals, argv[optind], "set", set_op, max);
}

static int run_pause_or_resume(const cli_command *command, cli_globals *globals, int argc,
                               char **argv, bool paused)
{
	int exit_code = parse_options(command, globals, argc, argv, NULL);
	if (exit_code >= 0)
		return exit_code;
	if (argc - optind != 1)
		return cli_usage_error(command, "give the queue's name");
	return act(globals, argv[optind], paused ? "paused" : "resumed", pause_op, paused);
}

static int run_pause(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	return run_pause_or_resume(command, globals, argc, argv, true);
}

static int run_resume(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	return run_pause_or_resume(command, globals, argc, argv, false);
}

static void print_queues(const json_t *queues)
{
	printf("%-24s %8s %8s %8s  %s\n", "QUEUE", "MAX", "RUNNING", "QUEUED", "PAUSED");
	for (size_t i = 0; i < json_array_size(queues); i++) {
		json_t *queue = json_array_get(queues, i);
		printf("%-24s %8lld %8lld %8lld  %s\n", json_string_value(json_object_get(queue, "name")),
		       (long long)json_integer_value(json_object_get(queue, "max")),
		       (long long)json_integer_value(json_object_get(queue, "running")),
		       (long long)json_integer_value(json_object_get(queue, "queued")),
		       json_is_true(json_object_get(queue, "paused")) ? "yes" : "no");
	}
}

static int run_ls(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int exit_code = parse_options(command, globals, argc, argv, NULL);
	if (exit_code >= 0)
		return exit_code;
	if (argc - optind != 0)
		return cli_usage_error(command, "takes no arguments");
	return cli_fetch_and_print(globals, weft_queues, print_queues);
}

static const cli_command queue_set = {
	.name = "queue set",
	.usage = "NAME --max N",
	.summary = "make a queue, or change how many of its jobs may run at once",
	.help = "Raising --max starts queued jobs at once. Prints 'NAME set'.\n"
	        "  --max N        how many of the queue's jobs may run at once (1 to 1000000)\n",
	.run = run_set,
};

static const cli_command queue_pause = {
	.name = "queue pause",
	.usage = "NAME",
	.summary = "start none of the queue's jobs until resumed (running ones finish)",
	.help = "Prints 'NAME paused'.\n",
	.run = run_pause,
};

static const cli_command queue_resume = {
	.name = "queue resume",
	.usage = "NAME",
	.summary = "start the queue's jobs again",
	.help = "Prints 'NAME resumed'.\n",
	.run = run_resume,
};

static const cli_command queue_ls = {
	.name = "queue ls",
	.usage = "",
	.summary = "list the queues: max, running, queued, paused",
	.help = "--json prints the daemon's list as it is.\n",
	.run = run_ls,
};

static const cli_command *const subcommands[] = {&queue_set, &queue_pause, &queue_resume,
                                                  &queue_ls};

static int run_queue(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	return cli_run_subcommand(command, globals, argc, argv, subcommands,
	                          sizeof(subcommands) / sizeof(subcommands[0]));
}

const cli_command cli_command_queue = {
	.name = "queue",
	.usage = "set NAME --max N | pause NAME | resume NAME | ls",
	.summary = "named queues: at most N of their jobs run at once",
	.help = "  weft queue set NAME --max N   make a queue or change its limit\n"
	        "  weft queue pause NAME         start none of its jobs until resumed\n"
	        "  weft queue resume NAME        start its jobs again\n"
	        "  weft queue ls                 list the queues\n\n"
	        "A job runs in a queue with weft call/submit/run --queue NAME; the daemon can\n"
	        "also make queues at start-up (weftd --queue NAME=MAX).\n"
	        "'weft queue SUBCOMMAND --help' explains each one.\n",
	.run = run_queue,
};
