/* weft iter and weft events: the commands that follow a stream as it comes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* ----------------------------------------------------------------- iter */

int cli_iterate(const cli_globals *globals, weft_client *client, uint64_t id)
{
	weft_iter *iter = NULL;
	if (weft_iter_open(client, id, &iter) != WEFT_OK)
		return cli_report_error(globals);
	int exit_code = CLI_EXIT_OK;
	for (;;) {
		json_t *item = NULL;
		int rv = weft_iter_next(iter, 30, &item);
		if (rv == WEFT_ETIMEOUT)
			continue; /* the job goes on: keep following it */
		if (rv != WEFT_OK) {
			exit_code = cli_report_error(globals);
			break;
		}
		if (item == NULL) {
			const weft_outcome *outcome = weft_iter_outcome(iter);
			if (outcome->state != WEFT_STATE_DONE) {
				fprintf(stderr, "weft: job %" PRIu64 " %s after %" PRIu64 " items: %s: %s\n",
				        id, weft_state_name(outcome->state), weft_iter_count(iter),
				        outcome->error_type != NULL ? outcome->error_type : "",
				        outcome->error_message != NULL ? outcome->error_message : "");
				exit_code = CLI_EXIT_JOB_FAILED;
			}
			break;
		}
		/* One item a line, as it arrives: a pipe reader sees it at once. */
		cli_print_json(item);
		fflush(stdout);
		json_decref(item);
	}
	weft_iter_close(iter);
	return exit_code;
}

static int run_iter(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int rv = cli_parse_global_options(command, globals, argc, argv);
	if (rv != CLI_OPTION_HANDLED)
		return rv;
	uint64_t id;
	if (argc - optind != 1 || !cli_parse_id(argv[optind], &id))
		return cli_usage_error(command, "give one job id");
	weft_client *client = NULL;
	if ((rv = cli_connect(globals, &client)) != 0)
		return rv;
	rv = cli_iterate(globals, client, id);
	weft_close(client);
	return rv;
}

const cli_command cli_command_iter = {
	.name = "iter",
	.usage = "ID",
	.summary = "print the items a job yields, one JSON value a line, as they come",
	.help = "Follows job ID until it has finished and every item was printed. Reading\n"
	        "takes the items: a job has one reader. Exit code 1 when the job failed\n"
	        "or was cancelled (its error goes to stderr after the last item).\n",
	.run = run_iter,
};

/* --------------------------------------------------------------- events */

static void print_event(const cli_globals *globals, const json_t *event)
{
	if (globals->json) {
		cli_print_json(event);
		return;
	}
	double time = json_number_value(json_object_get(event, "time"));
	const char *type = json_string_value(json_object_get(event, "type"));
	if (type != NULL && strcmp(type, "queue") == 0) {
		printf("%.6f queue %s %s", time, json_string_value(json_object_get(event, "queue")),
		       json_string_value(json_object_get(event, "change")));
		json_t *max = json_object_get(event, "max");
		if (max != NULL)
			printf(" max=%" JSON_INTEGER_FORMAT, json_integer_value(max));
		printf("\n");
		return;
	}
	json_t *from = json_object_get(event, "from");
	json_t *worker = json_object_get(event, "worker");
	printf("%.6f job %" JSON_INTEGER_FORMAT " %s %s -> %s owner=%" JSON_INTEGER_FORMAT, time,
	       json_integer_value(json_object_get(event, "id")),
	       json_string_value(json_object_get(event, "fn")),
	       json_is_string(from) ? json_string_value(from) : "new",
	       json_string_value(json_object_get(event, "state")),
	       json_integer_value(json_object_get(event, "owner")));
	if (worker != NULL)
		printf(" worker=%" JSON_INTEGER_FORMAT, json_integer_value(worker));
	printf("\n");
}

static int run_events(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	static const struct option options[] = {
		{"follow", no_argument, NULL, 'f'},
		{"id", required_argument, NULL, 'i'},
		{"after", required_argument, NULL, 'a'},
		CLI_GLOBAL_OPTIONS,
	};
	bool follow = false;
	const char *after = NULL;
	json_t *ids = json_array();
	int exit_code = CLI_EXIT_USAGE;
	int option;
	while ((option = getopt_long(argc, argv, ":f", options, NULL)) != -1) {
		uint64_t id;
		switch (option) {
		case 'f':
			follow = true;
			break;
		case 'a':
			after = optarg;
			break;
		case 'i':
			if (!cli_parse_id(optarg, &id)) {
				cli_usage_error(command, "--id takes a job id, such as 7");
				goto done;
			}
			json_array_append_new(ids, json_integer((json_int_t)id));
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
		cli_usage_error(command, "unexpected argument '%s'", argv[optind]);
		goto done;
	}
	json_t *filter = json_array_size(ids) > 0 ? json_pack("{s:O}", "ids", ids) : NULL;
	weft_client *client = NULL;
	if ((exit_code = cli_connect(globals, &client)) != 0) {
		json_decref(filter);
		goto done;
	}
	weft_events *events = NULL;
	if (weft_events_open(client, after, filter, &events) != WEFT_OK) {
		exit_code = cli_report_error(globals);
	} else {
		for (;;) {
			json_t *event = NULL;
			int rv = weft_events_next(events, follow ? 30 : 0, &event);
			if (rv == WEFT_ETIMEOUT) {
				if (follow)
					continue;
				break;
			}
			if (rv == WEFT_ECURSOREXPIRED) {
				/* Say so and go on from the oldest held: nothing is lost silently. */
				fprintf(stderr, "weft: %s\n", weft_last_error()->message);
				continue;
			}
			if (rv != WEFT_OK) {
				exit_code = cli_report_error(globals);
				break;
			}
			print_event(globals, event);
			fflush(stdout);
			json_decref(event);
		}
		weft_events_close(events);
	}
	weft_close(client);
	json_decref(filter);
done:
	json_decref(ids);
	return exit_code;
}

const cli_command cli_command_events = {
	.name = "events",
	.usage = "[--follow] [--id ID]... [--after CURSOR] [--json]",
	.summary = "print job state changes and queue changes (yours; root and admins: all)",
	.help = "Prints the events weftd holds, oldest first, one a line, then exits; with\n"
	        "--follow waits for more until interrupted.\n\n"
	        "  --follow, -f   keep printing events as they happen\n"
	        "  --id ID        only this job's events (repeatable)\n"
	        "  --after C      only events after cursor C (from an earlier --json line)\n"
	        "  --json         one event object a line, with its cursor\n\n"
	        "When events were dropped before they were read (the reader fell behind the\n"
	        "daemon's ring, or weftd restarted) a line on stderr says so.\n",
	.run = run_events,
};
