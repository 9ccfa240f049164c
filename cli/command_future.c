/*
 * weft future new | set | fail: bare futures from the shell. A script makes
 * a future, hands its id to whoever waits (weft result ID, weft wait, --after
 * ID) and sets it when the value is known.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* Parses the options of a future subcommand, which take only --label (new)
 * and the global ones. Returns -1 to go on, or the exit code to leave with. */
static int parse_options(const cli_command *command, cli_globals *globals, int argc, char **argv,
                         json_t *labels)
{
	static const struct option with_labels[] = {
		{"label", required_argument, NULL, 'l'},
		CLI_GLOBAL_OPTIONS,
	};
	static const struct option without_labels[] = {CLI_GLOBAL_OPTIONS};
	int option;
	/* '+' would stop at the first word; without it getopt lets options
	 * follow the id, as in the other commands. A negative number as JSON
	 * must then come after "--". */
	while ((option = getopt_long(argc, argv, ":",
	                             labels != NULL ? with_labels : without_labels, NULL)) != -1) {
		if (option == 'l') {
			if (cli_add_label(command, optarg, "who=me", labels) != 0)
				return CLI_EXIT_USAGE;
			continue;
		}
		int exit_code = cli_common_option(command, globals, option, argc, argv);
		if (exit_code != CLI_OPTION_HANDLED)
			return exit_code;
	}
	return -1;
}

/* Prints {"id": id, "state": state} (--json) or "ID STATE". */
static void print_set(const cli_globals *globals, uint64_t id, const char *state)
{
	if (globals->json) {
		json_t *document = json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", state);
		cli_print_json(document);
		json_decref(document);
	} else {
		printf("%llu %s\n", (unsigned long long)id, state);
	}
}

static const cli_command future_new, future_set, future_fail;

static int run_new(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	json_t *labels = json_object();
	if (labels == NULL) {
		fprintf(stderr, "weft: out of memory\n");
		return CLI_EXIT_ERROR;
	}
	int exit_code = parse_options(command, globals, argc, argv, labels);
	if (exit_code >= 0)
		goto done;
	if (argc - optind != 0) {
		exit_code = cli_usage_error(command, "takes no arguments, only --label K=V");
		goto done;
	}
	weft_client *client = NULL;
	if ((exit_code = cli_connect(globals, &client)) != 0)
		goto done;
	uint64_t id = 0;
	if (weft_future_new(client, json_object_size(labels) > 0 ? labels : NULL, &id) != 0) {
		exit_code = cli_report_error(globals);
	} else if (globals->json) {
		json_t *document = json_pack("{s:I}", "id", (json_int_t)id);
		cli_print_json(document);
		json_decref(document);
	} else {
		printf("%llu\n", (unsigned long long)id);
	}
	weft_close(client);
done:
	json_decref(labels);
	return exit_code;
}

/* The id in argv[optind]; prints a usage error and returns false when it is not one. */
static bool parse_id(const cli_command *command, char **argv, uint64_t *id)
{
	if (cli_parse_id(argv[optind], id))
		return true;
	cli_usage_error(command, "'%s' is not a future's id (a positive integer)", argv[optind]);
	return false;
}

static int run_set(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int exit_code = parse_options(command, globals, argc, argv, NULL);
	if (exit_code >= 0)
		return exit_code;
	if (argc - optind != 2)
		return cli_usage_error(command, "give the future's id and its result as JSON");
	uint64_t id = 0;
	if (!parse_id(command, argv, &id))
		return CLI_EXIT_USAGE;
	json_error_t error;
	json_t *result = json_loads(argv[optind + 1], JSON_DECODE_ANY, &error);
	if (result == NULL)
		return cli_usage_error(command,
		                       "the result is not valid JSON: %s (column %d); a string "
		                       "needs its quotes, such as '\"hello\"'",
		                       error.text, error.column);
	weft_client *client = NULL;
	if ((exit_code = cli_connect(globals, &client)) == 0) {
		if (weft_future_set_result(client, id, result) != 0)
			exit_code = cli_report_error(globals);
		else
			print_set(globals, id, "done");
		weft_close(client);
	}
	json_decref(result);
	return exit_code;
}

static int run_fail(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int exit_code = parse_options(command, globals, argc, argv, NULL);
	if (exit_code >= 0)
		return exit_code;
	if (argc - optind != 3)
		return cli_usage_error(command, "give the future's id, an error type and a message");
	uint64_t id = 0;
	if (!parse_id(command, argv, &id))
		return CLI_EXIT_USAGE;
	const char *type = argv[optind + 1];
	const char *message = argv[optind + 2];
	if (type[0] == '\0' || strlen(type) > 64)
		return cli_usage_error(command, "the error type must be 1 to 64 bytes, such as "
		                                "ValueError");
	weft_client *client = NULL;
	if ((exit_code = cli_connect(globals, &client)) != 0)
		return exit_code;
	if (weft_future_set_error(client, id, type, message) != 0)
		exit_code = cli_report_error(globals);
	else
		print_set(globals, id, "failed");
	weft_close(client);
	return exit_code;
}

static const cli_command future_new = {
	.name = "future new",
	.usage = "[--label K=V]...",
	.summary = "make a bare future and print its id",
	.help = "The future is a job that runs nothing and stays 'pending' until 'weft future\n"
	        "set' or 'weft future fail' sets it; 'weft result ID', 'weft wait' and\n"
	        "'--after ID' wait for it like for any job, 'weft cancel ID' cancels it.\n"
	        "Only you (or root) may set it. Prints the id (--json: {\"id\": N}).\n\n"
	        "  --label K=V    attach a label (repeatable); 'weft ls --label' filters on it\n",
	.run = run_new,
};

static const cli_command future_set = {
	.name = "future set",
	.usage = "ID JSON",
	.summary = "set a future's result: it ends done, and its waiters get JSON",
	.help = "JSON is any JSON value: 42, '\"text\"', '{\"a\": [1, 2]}' (quoted for the\n"
	        "shell; a negative number goes after '--'). Prints 'ID done' (--json:\n"
	        "{\"id\", \"state\"}). A future is set once: setting it again is an error\n"
	        "(already_set, exit 5), as is setting another user's (permission_denied).\n",
	.run = run_set,
};

static const cli_command future_fail = {
	.name = "future fail",
	.usage = "ID TYPE MESSAGE",
	.summary = "set a future's error: it ends failed with error TYPE: MESSAGE",
	.help = "TYPE names the kind of failure (1 to 64 bytes, such as ValueError); its\n"
	        "waiters get it as a failed job's error. Prints 'ID failed'. Errors as for\n"
	        "'weft future set'.\n",
	.run = run_fail,
};

static const cli_command *const subcommands[] = {&future_new, &future_set, &future_fail};
#define SUBCOMMAND_COUNT (sizeof(subcommands) / sizeof(subcommands[0]))

static int run_future(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	return cli_run_subcommand(command, globals, argc, argv, subcommands, SUBCOMMAND_COUNT);
}

const cli_command cli_command_future = {
	.name = "future",
	.usage = "new [--label K=V]... | set ID JSON | fail ID TYPE MESSAGE",
	.summary = "bare futures: make one, set its result or its error",
	.help = "  weft future new [--label K=V]...   make a future; prints its id\n"
	        "  weft future set ID JSON            set its result (any JSON value)\n"
	        "  weft future fail ID TYPE MESSAGE   set its error\n\n"
	        "A future is a job that runs nothing and stays 'pending' until set, once, by\n"
	        "the user who made it (or root). Everything that waits for jobs waits for it:\n"
	        "weft result ID, weft wait ID..., weft call/submit/run --after ID.\n"
	        "'weft future SUBCOMMAND --help' explains each one.\n",
	.run = run_future,
};
