/*
 * weft: the command-line client of weftd. Finds the subcommand, lets it
 * parse its own options (the global ones are accepted on both sides of its
 * name) and returns its exit code (cli.h lists them).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "proto/proto.h"

static const cli_command *const commands[] = {
	&cli_command_ping,   &cli_command_call,  &cli_command_result,
	&cli_command_wait,   &cli_command_cancel, &cli_command_status,
	&cli_command_ls,     &cli_command_stats, &cli_command_functions,
	&cli_command_request, &cli_command_run,    &cli_command_submit,
	&cli_command_future,
	&cli_command_queue,
	&cli_command_iter,   &cli_command_events,
	&cli_command_logs,
};
#define COMMAND_COUNT (sizeof(commands) / sizeof(commands[0]))

static void print_main_help(FILE *stream)
{
	fprintf(stream, "usage: weft [--url URL] [--json] COMMAND [ARGUMENTS] [OPTIONS]\n\n"
	                "Drives weftd, the weft task-scheduler daemon.\n\ncommands:\n");
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		fprintf(stream, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(stream,
	        "\nglobal options (before or after the command):\n"
	        "  --url URL   the daemon to talk to (default: $WEFT_URL, else your own\n"
	        "              daemon's socket, else ipc:///run/weft/weft.sock)\n"
	        "  --json      print one JSON document on stdout, for scripts\n"
	        "  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"
	        "              for a tls+tcp://HOST:PORT URL: your certificate and key, and\n"
	        "              the CA weftd's certificate must be signed by (default:\n"
	        "              $WEFT_TLS_CERT, $WEFT_TLS_KEY, $WEFT_TLS_CA)\n"
	        "  --help      this text; 'weft COMMAND --help' explains a command\n"
	        "  --version   the version of weft\n"
	        "\nexit codes:\n"
	        "  0  success\n"
	        "  1  the job failed or was cancelled\n"
	        "  2  usage error (bad flags or arguments; nothing was sent)\n"
	        "  3  cannot connect to weftd, or the connection was lost\n"
	        "  4  timeout: the job is still unfinished, or the wait condition did\n"
	        "     not hold within --timeout\n"
	        "  5  any other error reported by weftd (its message is printed)\n"
	        "'weft run' instead exits with the command's own status: N, 128+N when\n"
	        "killed by signal N, 124 timeout, 127 cannot start, 130 cancelled,\n"
	        "125 weft failed (see 'weft run --help')\n");
}

void cli_print_command_help(const cli_command *command)
{
	printf("usage: weft %s %s\n\n%s\n\n%s", command->name, command->usage, command->summary,
	       command->help);
	printf("\nglobal options: --url URL, --json, --help (see 'weft --help',\n"
	       "which also lists the exit codes)\n");
}

int cli_usage_error(const cli_command *command, const char *format, ...)
{
	fprintf(stderr, "weft %s: ", command->name);
	va_list arguments;
	va_start(arguments, format);
	vfprintf(stderr, format, arguments);
	va_end(arguments);
	fprintf(stderr, "\nusage: weft %s %s\n(see 'weft %s --help')\n", command->name,
	        command->usage, command->name);
	return CLI_EXIT_USAGE;
}

/* libweft reads the files of a tls+tcp:// connection from the environment. */
static void cli_set_tls_file(int option, const char *path)
{
	setenv(option == CLI_OPTION_TLS_CERT  ? "WEFT_TLS_CERT"
	       : option == CLI_OPTION_TLS_KEY ? "WEFT_TLS_KEY"
	                                      : "WEFT_TLS_CA",
	       path, 1);
}

int cli_common_option(const cli_command *command, cli_globals *globals, int option, int argc,
                      char **argv)
{
	switch (option) {
	case CLI_OPTION_URL:
		globals->url = optarg;
		return CLI_OPTION_HANDLED;
	case CLI_OPTION_JSON:
		globals->json = true;
		return CLI_OPTION_HANDLED;
	case CLI_OPTION_HELP:
		cli_print_command_help(command);
		return CLI_EXIT_OK;
	case CLI_OPTION_TLS_CERT:
	case CLI_OPTION_TLS_KEY:
	case CLI_OPTION_TLS_CA:
		cli_set_tls_file(option, optarg);
		return CLI_OPTION_HANDLED;
	default: {
		/* getopt has stepped past the faulty word. */
		const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
		if (option == ':')
			cli_usage_error(command, "option '%s' needs a value", word);
		else
			cli_usage_error(command, "unknown option '%s'", word);
		return CLI_EXIT_USAGE;
	}
	}
}

int cli_parse_global_options(const cli_command *command, cli_globals *globals, int argc,
                             char **argv)
{
	static const struct option options[] = {CLI_GLOBAL_OPTIONS};
	int option;
	while ((option = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		int exit_code = cli_common_option(command, globals, option, argc, argv);
		if (exit_code != CLI_OPTION_HANDLED)
			return exit_code;
	}
	return CLI_OPTION_HANDLED;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"version", no_argument, NULL, 'V'},
		CLI_GLOBAL_OPTIONS,
	};
	cli_globals globals = {.url = NULL, .json = false};
	opterr = 0;
	int option;
	/* '+': stop at the command's name; what follows is the command's. */
	while ((option = getopt_long(argc, argv, "+:", options, NULL)) != -1) {
		switch (option) {
		case CLI_OPTION_URL:
			globals.url = optarg;
			break;
		case CLI_OPTION_JSON:
			globals.json = true;
			break;
		case CLI_OPTION_HELP:
			print_main_help(stdout);
			return CLI_EXIT_OK;
		case CLI_OPTION_TLS_CERT:
		case CLI_OPTION_TLS_KEY:
		case CLI_OPTION_TLS_CA:
			cli_set_tls_file(option, optarg);
			break;
		case 'V':
			printf("weft %s (protocol %d)\n", PROTO_SOFTWARE_VERSION, PROTO_VERSION);
			return CLI_EXIT_OK;
		default:
			fprintf(stderr, "weft: unknown option or missing value: '%s'\n",
			        argv[optind - 1]);
			fprintf(stderr, "(see 'weft --help')\n");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		print_main_help(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < COMMAND_COUNT; i++) {
		if (strcmp(commands[i]->name, name) == 0) {
			int command_argc = argc - optind;
			char **command_argv = argv + optind;
			/* 0 makes glibc's getopt start afresh on the command's words. */
			optind = 0;
			return commands[i]->run(commands[i], &globals, command_argc, command_argv);
		}
	}
	fprintf(stderr, "weft: unknown command '%s'; commands are", name);
	for (size_t i = 0; i < COMMAND_COUNT; i++)
		fprintf(stderr, " %s", commands[i]->name);
	fprintf(stderr, " (see 'weft --help')\n");
	return CLI_EXIT_USAGE;
}
