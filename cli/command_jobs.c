/* weft call, result, cancel and status: the commands about single jobs. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/schedule.h"

/* ---------------------------------------------------------------- call */

typedef struct call_options {
	const char *fn;
	json_t *args;   /* own reference or NULL */
	double timeout; /* 0: none */
	json_t *labels; /* own reference */
	bool wait;
	bool wait_forever;
	double wait_seconds;
	bool iter;       /* print the items as they come, then the outcome */
	unsigned buffer; /* 0: none */
	cli_schedule schedule;
} call_options;

static int build_spec(const call_options *options, weft_job_spec **out)
{
	weft_job_spec *spec = NULL;
	if (weft_job_spec_new(options->fn, &spec) != 0)
		return weft_last_error()->code;
	int rv = weft_job_spec_set_args(spec, options->args);
	if (rv == 0 && options->timeout > 0)
		rv = weft_job_spec_set_timeout(spec, options->timeout);
	if (rv == 0 && options->buffer > 0)
		rv = weft_job_spec_set_buffer(spec, options->buffer);
	const char *key;
	json_t *value;
	json_object_foreach(options->labels, key, value)
	{
		if (rv == 0)
			rv = weft_job_spec_set_label(spec, key, json_string_value(value));
	}
	if (rv == 0)
		rv = cli_schedule_apply(&options->schedule, spec);
	if (rv != 0) {
		weft_job_spec_free(spec);
		return rv;
	}
	*out = spec;
	return WEFT_OK;
}

static int call_submit(const cli_globals *globals, weft_client *client,
                       const call_options *options)
{
	weft_job_spec *spec = NULL;
	if (build_spec(options, &spec) != 0)
		return cli_report_error(globals);
	int exit_code = CLI_EXIT_OK;
	weft_outcome *outcome = NULL;
	uint64_t id = 0;
	if (options->iter) {
		if (weft_submit(client, spec, &id) != 0)
			exit_code = cli_report_error(globals);
		else
			exit_code = cli_iterate(globals, client, id);
		goto done;
	}
	if (!options->wait) {
		if (weft_submit(client, spec, &id) != 0) {
			exit_code = cli_report_error(globals);
		} else if (globals->json) {
			json_t *document = json_pack("{s:I}", "id", (json_int_t)id);
			cli_print_json(document);
			json_decref(document);
		} else {
			printf("%llu\n", (unsigned long long)id);
		}
		goto done;
	}
	if (options->wait_forever) {
		/* The protocol's submit waits a finite time; forever is a submit
		 * and then a result without a timeout. */
		if (weft_submit(client, spec, &id) != 0 || weft_result(client, id, -1, &outcome) != 0) {
			exit_code = cli_report_error(globals);
			goto done;
		}
	} else if (weft_submit_wait(client, spec, options->wait_seconds, &outcome) != 0) {
		exit_code = cli_report_error(globals);
		goto done;
	}
	if (!weft_state_is_finished(outcome->state)) {
		fprintf(stderr,
		        "weft: job %llu is still %s after %g s; get its result later with "
		        "'weft result %llu'\n",
		        (unsigned long long)outcome->id, weft_state_name(outcome->state),
		        options->wait_seconds, (unsigned long long)outcome->id);
		if (globals->json) {
			json_t *document = cli_outcome_json(outcome);
			cli_print_json(document);
			json_decref(document);
		}
		exit_code = CLI_EXIT_TIMEOUT;
		goto done;
	}
	exit_code = cli_print_outcome(globals, outcome);
done:
	weft_outcome_free(outcome);
	weft_job_spec_free(spec);
	return exit_code;
}

static int run_call(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	static const struct option options[] = {
		{"timeout", required_argument, NULL, 't'},
		{"label", required_argument, NULL, 'l'},
		{"wait", optional_argument, NULL, 'w'},
		{"iter", no_argument, NULL, 'I'},
		{"buffer", required_argument, NULL, 'B'},
		CLI_SCHEDULE_OPTIONS,
		CLI_GLOBAL_OPTIONS,
	};
	call_options call = {.wait_forever = true};
	cli_schedule_init(&call.schedule);
	int exit_code = CLI_EXIT_USAGE;
	if ((call.labels = json_object()) == NULL) {
		fprintf(stderr, "weft: out of memory\n");
		return CLI_EXIT_ERROR;
	}
	int option;
	while ((option = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		int schedule_exit = 0;
		if (cli_schedule_option(command, &call.schedule, option, optarg, &schedule_exit)) {
			if (schedule_exit != 0)
				goto done;
			continue;
		}
		switch (option) {
		case 't':
			if (!cli_parse_seconds(optarg, &call.timeout) || call.timeout <= 0) {
				cli_usage_error(command, "--timeout takes seconds > 0, such as 2.5");
				goto done;
			}
			break;
		case 'l':
			if (cli_add_label(command, optarg, "team=ci", call.labels) != 0)
				goto done;
			break;
		case 'I':
			call.iter = true;
			break;
		case 'B': {
			long long items;
			if (!cli_parse_count(optarg, 1000000, &items)) {
				cli_usage_error(command, "--buffer takes a number of items from 1 to 1000000");
				goto done;
			}
			call.buffer = (unsigned)items;
			break;
		}
		case 'w':
			call.wait = true;
			/* "--wait 5" as well as "--wait=5": a bare number cannot be
			 * ARGS-JSON, which must be an object. */
			if (optarg == NULL && optind < argc &&
			    cli_parse_seconds(argv[optind], &call.wait_seconds)) {
				optind++;
				call.wait_forever = false;
			} else if (optarg != NULL) {
				if (!cli_parse_seconds(optarg, &call.wait_seconds)) {
					cli_usage_error(command, "--wait takes seconds >= 0, such as 10");
					goto done;
				}
				call.wait_forever = false;
			}
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
	if (cli_schedule_check(command, &call.schedule) != 0)
		goto done;
	int positional = argc - optind;
	if (positional < 1 || positional > 2) {
		cli_usage_error(command, positional < 1 ? "which function? (see 'weft functions')"
		                                        : "too many arguments");
		goto done;
	}
	call.fn = argv[optind];
	if (positional == 2 &&
	    cli_parse_json_object(command, "ARGS-JSON", argv[optind + 1], &call.args) != 0)
		goto done;
	weft_client *client = NULL;
	if ((exit_code = cli_connect(globals, &client)) != 0)
		goto done;
	exit_code = call_submit(globals, client, &call);
	weft_close(client);
done:
	json_decref(call.args);
	json_decref(call.labels);
	return exit_code;
}

const cli_command cli_command_call = {
	.name = "call",
	.usage = "FN [ARGS-JSON] [--timeout S] [--label K=V]... [--wait [S] | --iter] [--buffer N] "
	         "[SCHEDULING]",
	.summary = "submit a job: call function FN with ARGS-JSON (an object)",
	.help = "ARGS-JSON is a JSON object ('{\"seconds\": 2}'); '-' reads it from stdin,\n"
	        "'@FILE' from a file. Without --wait prints the new job's id.\n\n"
	        "  --timeout S    stop the job after S seconds of running (it fails with Timeout)\n"
	        "  --label K=V    attach a label (repeatable); 'weft ls --label' filters on it\n"
	        "  --wait [S]     wait for the job (at most S seconds) and print its result as\n"
	        "                 JSON; a failure goes to stderr with exit code 1, a job still\n"
	        "                 running after S seconds gives exit code 4\n"
	        "  --iter         print the items the job yields, one JSON value a line, as\n"
	        "                 they come (as 'weft iter'), until it ends\n"
	        "  --buffer N     a generator may run N unread items ahead of its reader\n"
	        "                 before it is paused\n\n" CLI_SCHEDULE_HELP,
	.run = run_call,
};

/* --------------------------------------------------------------- result */

/* The single job id left in argv after the options; 0, or the usage exit code. */
static int parse_one_id(const cli_command *command, int argc, char **argv, uint64_t *id)
{
	if (argc - optind != 1)
		return cli_usage_error(command, "give exactly one job id");
	if (!cli_parse_id(argv[optind], id))
		return cli_usage_error(command, "'%s' is not a job id (a positive integer)",
		                       argv[optind]);
	return 0;
}

static int run_result(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	static const struct option options[] = {
		{"timeout", required_argument, NULL, 't'},
		CLI_GLOBAL_OPTIONS,
	};
	double timeout = -1;
	int option;
	while ((option = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (option) {
		case 't':
			if (!cli_parse_seconds(optarg, &timeout))
				return cli_usage_error(command, "--timeout takes seconds >= 0 (0 polls)");
			break;
		default: {
			int exit_code = cli_common_option(command, globals, option, argc, argv);
			if (exit_code != CLI_OPTION_HANDLED)
				return exit_code;
		}
		}
	}
	uint64_t id;
	int usage = parse_one_id(command, argc, argv, &id);
	if (usage != 0)
		return usage;
	weft_client *client = NULL;
	int exit_code = cli_connect(globals, &client);
	if (exit_code != 0)
		return exit_code;
	weft_outcome *outcome = NULL;
	if (weft_result(client, id, timeout, &outcome) != 0)
		exit_code = cli_report_error(globals);
	else
		exit_code = cli_print_outcome(globals, outcome);
	weft_outcome_free(outcome);
	weft_close(client);
	return exit_code;
}

const cli_command cli_command_result = {
	.name = "result",
	.usage = "ID [--timeout S]",
	.summary = "wait for a job and print its result",
	.help = "Prints the result as JSON (exit 0), or the failure on stderr (exit 1).\n\n"
	        "  --timeout S    wait at most S seconds (0 polls; default: forever); a job\n"
	        "                 still unfinished then gives exit code 4 and is not affected\n",
	.run = run_result,
};

/* --------------------------------------------------------------- cancel */

static int run_cancel(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int exit_code = cli_parse_global_options(command, globals, argc, argv);
	if (exit_code != CLI_OPTION_HANDLED)
		return exit_code;
	if (argc - optind < 1)
		return cli_usage_error(command, "give at least one job id");
	for (int i = optind; i < argc; i++) {
		uint64_t id;
		if (!cli_parse_id(argv[i], &id))
			return cli_usage_error(command, "'%s' is not a job id (a positive integer)",
			                       argv[i]);
	}
	weft_client *client = NULL;
	exit_code = cli_connect(globals, &client);
	if (exit_code != 0)
		return exit_code;
	json_t *documents = globals->json ? json_array() : NULL;
	for (int i = optind; i < argc; i++) {
		uint64_t id = 0;
		cli_parse_id(argv[i], &id);
		bool cancelled = false;
		weft_state state = WEFT_STATE_UNKNOWN;
		if (weft_cancel(client, id, &cancelled, &state) != 0) {
			const weft_error_info *error = weft_last_error();
			fprintf(stderr, "weft: %s\n", error->message);
			if (exit_code == 0)
				exit_code = cli_exit_code(error->code);
			json_array_append_new(documents,
			                      json_pack("{s:I, s:{s:s, s:s}}", "id", (json_int_t)id,
			                                "error", "code", error->wire_code, "message",
			                                error->message));
			continue;
		}
		if (globals->json)
			json_array_append_new(documents,
			                      json_pack("{s:I, s:b, s:s}", "id", (json_int_t)id,
			                                "cancelled", cancelled, "state",
			                                weft_state_name(state)));
		else if (cancelled)
			printf("%llu cancelled\n", (unsigned long long)id);
		else
			printf("%llu not cancelled: already %s\n", (unsigned long long)id,
			       weft_state_name(state));
	}
	if (globals->json)
		cli_print_json(documents);
	json_decref(documents);
	weft_close(client);
	return exit_code;
}

const cli_command cli_command_cancel = {
	.name = "cancel",
	.usage = "ID...",
	.summary = "cancel queued or running jobs",
	.help = "Prints, per job, whether it was cancelled or had already finished (both\n"
	        "exit 0). With --json prints an array of {\"id\", \"cancelled\", \"state\"}.\n"
	        "An unknown id is reported and the other ids are still cancelled (exit 5).\n",
	.run = run_cancel,
};

/* --------------------------------------------------------------- status */

static void print_time(const char *key, const json_t *value)
{
	if (!json_is_number(value)) {
		printf("%-9s -\n", key);
		return;
	}
	double seconds = json_number_value(value);
	time_t whole = (time_t)seconds;
	struct tm local;
	char text[32] = "?";
	if (localtime_r(&whole, &local) != NULL)
		strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &local);
	printf("%-9s %s.%03d\n", key, text, (int)((seconds - (double)whole) * 1000));
}

static void print_job(const json_t *job)
{
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)job, key, value)
	{
		if (strcmp(key, "created") == 0 || strcmp(key, "started") == 0 ||
		    strcmp(key, "finished") == 0) {
			print_time(key, value);
		} else if (json_is_string(value)) {
			printf("%-9s %s\n", key, json_string_value(value));
		} else if (json_is_null(value)) {
			printf("%-9s -\n", key);
		} else if (json_is_real(value)) {
			/* For people: 0.2, not the 17 digits that keep it exact. */
			printf("%-9s %.15g\n", key, json_real_value(value));
		} else if (strcmp(key, "error") == 0 && json_is_object(value)) {
			printf("%-9s %s: %s\n", key,
			       json_string_value(json_object_get(value, "type")),
			       json_string_value(json_object_get(value, "message")));
		} else {
			printf("%-9s ", key);
			cli_print_json(value);
		}
	}
}

static int run_status(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	int exit_code = cli_parse_global_options(command, globals, argc, argv);
	if (exit_code != CLI_OPTION_HANDLED)
		return exit_code;
	uint64_t id;
	int usage = parse_one_id(command, argc, argv, &id);
	if (usage != 0)
		return usage;
	weft_client *client = NULL;
	exit_code = cli_connect(globals, &client);
	if (exit_code != 0)
		return exit_code;
	json_t *job = NULL;
	if (weft_status(client, id, &job) != 0)
		exit_code = cli_report_error(globals);
	else if (globals->json)
		cli_print_json(job);
	else
		print_job(job);
	json_decref(job);
	weft_close(client);
	return exit_code;
}

const cli_command cli_command_status = {
	.name = "status",
	.usage = "ID",
	.summary = "show a job: state, arguments, labels, times, error",
	.help = "With --json prints the job object of the protocol.\n",
	.run = run_status,
};
