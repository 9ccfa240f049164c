/*
 * weft logs ID: an exec job's output, from what weftd keeps of it (its
 * --output-window), as bytes; with -f until the job ends.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/stream.h"

static int run_logs(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	static const struct option table[] = {
		{"follow", no_argument, NULL, 'f'},
		{"stream", required_argument, NULL, 's'},
		{"tail", required_argument, NULL, 'n'},
		CLI_GLOBAL_OPTIONS,
	};
	bool follow = false;
	weft_stream stream = WEFT_STREAM_BOTH;
	long long tail = 0;
	int option;
	while ((option = getopt_long(argc, argv, "+:fn:", table, NULL)) != -1) {
		switch (option) {
		case 'f':
			follow = true;
			break;
		case 's':
			if (strcmp(optarg, "stdout") == 0)
				stream = WEFT_STREAM_STDOUT;
			else if (strcmp(optarg, "stderr") == 0)
				stream = WEFT_STREAM_STDERR;
			else if (strcmp(optarg, "both") == 0)
				stream = WEFT_STREAM_BOTH;
			else
				return cli_usage_error(command, "--stream takes stdout, stderr or both");
			break;
		case 'n':
			if (!cli_parse_count(optarg, 1000000, &tail))
				return cli_usage_error(command, "--tail takes a number of lines from 1 to "
				                                "1000000");
			break;
		default: {
			int exit_code = cli_common_option(command, globals, option, argc, argv);
			if (exit_code != CLI_OPTION_HANDLED)
				return exit_code;
		}
		}
	}
	uint64_t id;
	if (optind + 1 != argc || !cli_parse_id(argv[optind], &id))
		return cli_usage_error(command, "takes one job id, such as 'weft logs 7'");
	if (globals->json)
		return cli_usage_error(command, "prints bytes, not JSON: leave out --json (the "
		                                "'output' op gives them in JSON: weft request)");
	weft_client *client = NULL;
	int exit_code = cli_connect(globals, &client);
	if (exit_code != 0)
		return exit_code;
	cli_stream_state state;
	int rv = cli_stream_copy(client, id, stream, 0, follow, tail, &state);
	if (rv == CLI_STREAM_WRITE_FAILED)
		exit_code = CLI_EXIT_ERROR;
	else if (rv != WEFT_OK)
		exit_code = cli_report_error(globals);
	else if (state.lost > 0)
		exit_code = CLI_EXIT_JOB_FAILED;
	weft_close(client);
	return exit_code;
}

const cli_command cli_command_logs = {
	.name = "logs",
	.usage = "[-f] [--stream stdout|stderr|both] [--tail N] ID",
	.summary = "print an exec job's output (-f: follow it until the job ends)",
	.help = "Prints what weftd keeps of an exec job's output, byte for byte: stdout here\n"
	        "on stdout and stderr on stderr, in the order the job wrote them. weftd keeps\n"
	        "the most recent --output-window bytes of each job (4 MiB by default), within\n"
	        "a budget per user; older bytes are gone, and weft says how many on stderr.\n\n"
	        "  -f, --follow      keep printing as the job writes, until it ends (waits\n"
	        "                    for a job that has not started yet)\n"
	        "  --stream S        stdout, stderr or both (default both)\n"
	        "  -n, --tail N      begin with the last N lines\n"
	        "\nexit codes: 0 printed; 1 some output was no longer kept; 5 weftd refused\n"
	        "(unknown id, another user's job, not an exec job); 3 cannot connect.\n",
	.run = run_logs,
};
