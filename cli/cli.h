/*
 * The weft CLI: shared declarations of its subcommands, option parsing and
 * output. Single-threaded; everything runs on the main thread.
 *
 * Exit codes (also in `weft --help`):
 *   0 success
 *   1 the job failed or was cancelled (call --wait, result)
 *   2 usage error: bad flags or arguments; nothing was sent
 *   3 cannot connect to weftd, or the connection was lost
 *   4 timeout: the job is still unfinished (result, call --wait S), or the
 *     wait condition did not hold before --timeout (wait; done and pending
 *     are still printed)
 *   5 any other error reported by weftd (unknown id, unknown function, ...)
 * except `weft run`, which exits with the command's own status and has codes
 * of its own (command_run.c).
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "weft/weft.h"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_JOB_FAILED = 1,
	CLI_EXIT_USAGE = 2,
	CLI_EXIT_CONNECT = 3,
	CLI_EXIT_TIMEOUT = 4,
	CLI_EXIT_ERROR = 5,
};

/* Options every subcommand takes, before or after its name. */
typedef struct cli_globals {
	const char *url; /* borrowed from argv; NULL: the default (WEFT_URL, ...) */
	bool json;       /* one JSON document on stdout instead of text for people */
} cli_globals;

typedef struct cli_command {
	const char *name;
	const char *usage;   /* the arguments after the name */
	const char *summary; /* one line for `weft --help` */
	const char *help;    /* the options and what the command prints */
	int (*run)(const struct cli_command *command, cli_globals *globals, int argc, char **argv);
} cli_command;

/* Long-option values of the global options; subcommands put CLI_GLOBAL_OPTIONS
 * at the end of their option table and pass unknown values to cli_common_option. */
enum {
	CLI_OPTION_URL = 1000,
	CLI_OPTION_JSON,
	CLI_OPTION_HELP,
	CLI_OPTION_TLS_CERT,
	CLI_OPTION_TLS_KEY,
	CLI_OPTION_TLS_CA
};
#define CLI_GLOBAL_OPTIONS                                                                 \
	{"url", required_argument, NULL, CLI_OPTION_URL},                                  \
		{"json", no_argument, NULL, CLI_OPTION_JSON},                              \
		{"help", no_argument, NULL, CLI_OPTION_HELP},                              \
		{"tls-cert", required_argument, NULL, CLI_OPTION_TLS_CERT},                \
		{"tls-key", required_argument, NULL, CLI_OPTION_TLS_KEY},                  \
		{"tls-ca", required_argument, NULL, CLI_OPTION_TLS_CA}, {NULL, 0, NULL, 0}

/* What cli_common_option returns when the command's option loop goes on; no
 * exit code is negative. */
#define CLI_OPTION_HANDLED (-1)

/* Handles a global option, --help and getopt's errors ('?', ':'); prints what
 * is needed. Returns CLI_OPTION_HANDLED, or the code to exit with:
 * CLI_EXIT_OK after --help, CLI_EXIT_USAGE after a bad option. */
int cli_common_option(const cli_command *command, cli_globals *globals, int option, int argc,
                      char **argv);

/* Parses the options of a command that has only the global ones, leaving
 * optind at its first argument. Returns what cli_common_option does. */
int cli_parse_global_options(const cli_command *command, cli_globals *globals, int argc,
                             char **argv);

/* Prints the command's help on stdout. */
void cli_print_command_help(const cli_command *command);

/* Prints "weft NAME: <message>" and a hint to stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const cli_command *command, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

/* ----------------------------------------------------------- parsing (parse.c) */

/* A number of seconds >= 0 ("1.5"); false when text is not one. */
bool cli_parse_seconds(const char *text, double *seconds);
/* A job id (1 to 2^53). */
bool cli_parse_id(const char *text, uint64_t *id);
/* A positive integer up to max. */
bool cli_parse_count(const char *text, long long max, long long *count);
/* "KEY=VALUE": splits in place into *key and *value (pointers into text). */
bool cli_parse_label(char *text, char **key, char **value);
/* Adds a --label KEY=VALUE (text, split in place) to labels. Returns 0, or
 * prints a usage error showing example ("team=ci") and returns
 * CLI_EXIT_USAGE: text lacks '=' or a key, or is not UTF-8. */
int cli_add_label(const cli_command *command, char *text, const char *example, json_t *labels);
/* A JSON object from text, from stdin when text is "-", or from a file when it
 * starts with '@'. *out: new reference. On failure prints a usage error naming
 * what to fix and returns CLI_EXIT_USAGE. */
int cli_parse_json_object(const cli_command *command, const char *what, const char *text,
                          json_t **out);

/* ----------------------------------------------------------- output (output.c) */

/* Connects to globals->url (or the default). On failure reports the error
 * like cli_report_error and returns its exit code. */
int cli_connect(const cli_globals *globals, weft_client **client);

/* Reports the calling thread's last libweft error: "weft: <message>" on
 * stderr, and with --json {"ok": false, "error": {...}} on stdout. Returns the
 * exit code for it. */
int cli_report_error(const cli_globals *globals);

/* The exit code for a libweft error code. */
int cli_exit_code(int error);

/* Connects, fetches a value with fetch (a libweft call giving a new reference)
 * and prints it: as JSON with --json, else with print. Returns the exit code. */
int cli_fetch_and_print(const cli_globals *globals, int (*fetch)(weft_client *, json_t **),
                        void (*print)(const json_t *));

/* Runs the subcommand named by the first word after `command` (global options
 * may come before it); subcommands are named "COMMAND WORD". Returns the exit
 * code. */
int cli_run_subcommand(const cli_command *command, cli_globals *globals, int argc, char **argv,
                       const cli_command *const *subcommands, size_t count);

/* Prints value (borrowed) as one line of compact JSON on stdout. */
void cli_print_json(const json_t *value);

/* Prints a job's outcome: the result as JSON on stdout, or the failure on
 * stderr ("job 7 failed: Timeout: ..."); with --json the outcome object on
 * stdout. Returns 0 for done, CLI_EXIT_JOB_FAILED otherwise. */
int cli_print_outcome(const cli_globals *globals, const weft_outcome *outcome);

/* The outcome as a JSON object {"id", "state", "result" | "error"}; new
 * reference, NULL when out of memory. */
json_t *cli_outcome_json(const weft_outcome *outcome);

/* ----------------------------------------------------------- the subcommands */

extern const cli_command cli_command_ping, cli_command_call, cli_command_result,
	cli_command_wait, cli_command_cancel, cli_command_status, cli_command_ls,
	cli_command_stats, cli_command_functions, cli_command_request, cli_command_run,
	cli_command_submit, cli_command_future, cli_command_queue, cli_command_iter,
	cli_command_events, cli_command_logs;

/* Prints job id's items, one JSON value a line, until the job ends
 * (command_stream.c). Returns the exit code. */
int cli_iterate(const cli_globals *globals, weft_client *client, uint64_t id);

#endif
