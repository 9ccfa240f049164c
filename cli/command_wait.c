/*
 * weft wait: asyncio.wait from the shell.
 *
 * Exit code 0 when the condition asked for (--all, --any, --first-error)
 * holds, 4 when --timeout passed first. Either way done and pending are
 * printed: running out of time is not a failure of the command, but a script
 * needs to tell "all finished" from "gave up waiting" without parsing.
 *
 * With --as-completed (asyncio.as_completed) it prints each id the moment its
 * job finishes instead, one per line, and exits 0 once all have, 4 when
 * --timeout passed first.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

static void print_ids(const char *label, const uint64_t *ids, size_t count)
{
	printf("%s", label);
	for (size_t i = 0; i < count; i++)
		printf(" %llu", (unsigned long long)ids[i]);
	printf("\n");
}

static json_t *id_array(const uint64_t *ids, size_t count)
{
	json_t *array = json_array();
	for (size_t i = 0; i < count && array != NULL; i++)
		json_array_append_new(array, json_integer((json_int_t)ids[i]));
	return array;
}

/* Whether FIRST_EXCEPTION's condition holds: all finished, or one failed. */
static bool exception_seen(weft_client *client, const weft_wait_result *result)
{
	if (result->pending_count == 0)
		return true;
	for (size_t i = 0; i < result->done_count; i++) {
		weft_outcome *outcome = NULL;
		if (weft_result(client, result->done[i], 0, &outcome) != 0)
			continue;
		bool failed = outcome->state == WEFT_STATE_FAILED;
		weft_outcome_free(outcome);
		if (failed)
			return true;
	}
	return false;
}

static bool condition_holds(weft_client *client, weft_return_when when,
                            const weft_wait_result *result)
{
	switch (when) {
	case WEFT_FIRST_COMPLETED:
		return result->done_count > 0;
	case WEFT_FIRST_EXCEPTION:
		return exception_seen(client, result);
	case WEFT_ALL_COMPLETED:
		break;
	}
	return result->pending_count == 0;
}

/* Prints each id as its job finishes; the exit code. */
static int print_as_completed(const cli_globals *globals, weft_client *client,
                              const uint64_t *ids, size_t count, double timeout)
{
	weft_as_completed *iterator = NULL;
	if (weft_as_completed_new(client, ids, count, timeout, &iterator) != 0)
		return cli_report_error(globals);
	int exit_code = CLI_EXIT_OK;
	for (;;) {
		uint64_t id = 0;
		if (weft_as_completed_next(iterator, &id) != 0) {
			exit_code = cli_report_error(globals);
			break;
		}
		if (id == 0)
			break;
		printf("%llu\n", (unsigned long long)id);
		/* A pipe would otherwise hold the line until the end. */
		fflush(stdout);
	}
	weft_as_completed_free(iterator);
	return exit_code;
}

static int run_wait(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	static const struct option options[] = {
		{"any", no_argument, NULL, 'a'},
		{"first-error", no_argument, NULL, 'e'},
		{"all", no_argument, NULL, 'A'},
		{"timeout", required_argument, NULL, 't'},
		{"as-completed", no_argument, NULL, 'c'},
		CLI_GLOBAL_OPTIONS,
	};
	weft_return_when when = WEFT_ALL_COMPLETED;
	bool when_given = false;
	bool as_completed = false;
	double timeout = -1;
	int option;
	while ((option = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (option) {
		case 'a':
			when = WEFT_FIRST_COMPLETED;
			when_given = true;
			break;
		case 'e':
			when = WEFT_FIRST_EXCEPTION;
			when_given = true;
			break;
		case 'A':
			when = WEFT_ALL_COMPLETED;
			when_given = true;
			break;
		case 'c':
			as_completed = true;
			break;
		case 't':
			if (!cli_parse_seconds(optarg, &timeout))
				return cli_usage_error(command, "--timeout takes seconds >= 0");
			break;
		default: {
			int exit_code = cli_common_option(command, globals, option, argc, argv);
			if (exit_code != CLI_OPTION_HANDLED)
				return exit_code;
		}
		}
	}
	if (as_completed && when_given)
		return cli_usage_error(command, "--as-completed waits for every job; it does not go "
		                                "with --any, --first-error or --all");
	size_t count = (size_t)(argc - optind);
	if (count == 0)
		return cli_usage_error(command, "give at least one job id");
	uint64_t *ids = calloc(count, sizeof(*ids));
	if (ids == NULL) {
		fprintf(stderr, "weft: out of memory\n");
		return CLI_EXIT_ERROR;
	}
	int exit_code = CLI_EXIT_OK;
	for (size_t i = 0; i < count; i++) {
		if (!cli_parse_id(argv[optind + (int)i], &ids[i])) {
			exit_code = cli_usage_error(command, "'%s' is not a job id (a positive integer)",
			                            argv[optind + (int)i]);
			goto done;
		}
	}
	weft_client *client = NULL;
	if ((exit_code = cli_connect(globals, &client)) != 0)
		goto done;
	if (as_completed) {
		exit_code = print_as_completed(globals, client, ids, count, timeout);
		goto done_client;
	}
	weft_wait_result *result = NULL;
	if (weft_wait(client, ids, count, timeout, when, &result) != 0) {
		exit_code = cli_report_error(globals);
		goto done_client;
	}
	if (globals->json) {
		json_t *document = json_pack("{s:o, s:o}", "done", id_array(result->done, result->done_count),
		                             "pending",
		                             id_array(result->pending, result->pending_count));
		cli_print_json(document);
		json_decref(document);
	} else {
		print_ids("done:", result->done, result->done_count);
		print_ids("pending:", result->pending, result->pending_count);
	}
	if (!condition_holds(client, when, result))
		exit_code = CLI_EXIT_TIMEOUT;
	weft_wait_result_free(result);
done_client:
	weft_close(client);
done:
	free(ids);
	return exit_code;
}

const cli_command cli_command_wait = {
	.name = "wait",
	.usage = "ID... [--any | --first-error | --all | --as-completed] [--timeout S]",
	.summary = "wait for jobs to finish (asyncio.wait); print done and pending",
	.help = "  --all          until every job is finished (the default)\n"
	        "  --any          until one job is finished\n"
	        "  --first-error  until a job fails, or all are finished\n"
	        "  --as-completed print each id as its job finishes, one per line, until all\n"
	        "                 have (asyncio.as_completed); the same with --json\n"
	        "  --timeout S    give up after S seconds (default: never)\n\n"
	        "Prints 'done: IDS' and 'pending: IDS' (--json: {\"done\": [...], \"pending\":\n"
	        "[...]}). Exit code 0 when the condition holds, 4 when the timeout passed\n"
	        "first (the lists are printed either way). With --as-completed: exit code 0\n"
	        "once every job has finished, 4 when the timeout passed first.\n",
	.run = run_wait,
};
