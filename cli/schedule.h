/*
 * The scheduling options that weft call, weft submit and weft run share
 * (--after, --after-always, --delay, --at, --retries, --retry-backoff,
 * --retry-backoff-max, --retry-on, --deadline), parsed into a cli_schedule
 * and put into a job spec. Main thread only, like the rest of the CLI.
 */
#ifndef CLI_SCHEDULE_H
#define CLI_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/cli.h"

/* The protocol's limits on after and retry_on. */
#define CLI_SCHEDULE_MAX_AFTER 1000
#define CLI_SCHEDULE_MAX_RETRY_ON 64

/* What the options asked for; zero-initialise, then cli_schedule_init. Holds
 * pointers into argv (borrowed), nothing to free. */
typedef struct cli_schedule {
	uint64_t after[CLI_SCHEDULE_MAX_AFTER];
	size_t after_count;
	bool after_always;
	double delay; /* negative: not given */
	double at;    /* negative: not given */
	long long retries; /* negative: not given */
	double retry_backoff;     /* negative: not given */
	double retry_backoff_max; /* negative: not given */
	const char *retry_on[CLI_SCHEDULE_MAX_RETRY_ON];
	size_t retry_on_count;
	double deadline; /* negative: not given */
	int priority;    /* 0: not given */
	const char *queue; /* NULL: not given */
} cli_schedule;

/* Long-option values of the scheduling options; a command puts
 * CLI_SCHEDULE_OPTIONS in its getopt table before CLI_GLOBAL_OPTIONS. */
enum {
	CLI_OPTION_AFTER = 1100,
	CLI_OPTION_AFTER_ALWAYS,
	CLI_OPTION_DELAY,
	CLI_OPTION_AT,
	CLI_OPTION_RETRIES,
	CLI_OPTION_RETRY_BACKOFF,
	CLI_OPTION_RETRY_BACKOFF_MAX,
	CLI_OPTION_RETRY_ON,
	CLI_OPTION_DEADLINE,
	CLI_OPTION_PRIORITY,
	CLI_OPTION_QUEUE,
};
#define CLI_SCHEDULE_OPTIONS                                                               \
	{"after", required_argument, NULL, CLI_OPTION_AFTER},                              \
		{"after-always", no_argument, NULL, CLI_OPTION_AFTER_ALWAYS},              \
		{"delay", required_argument, NULL, CLI_OPTION_DELAY},                      \
		{"at", required_argument, NULL, CLI_OPTION_AT},                            \
		{"retries", required_argument, NULL, CLI_OPTION_RETRIES},                  \
		{"retry-backoff", required_argument, NULL, CLI_OPTION_RETRY_BACKOFF},      \
		{"retry-backoff-max", required_argument, NULL, CLI_OPTION_RETRY_BACKOFF_MAX}, \
		{"retry-on", required_argument, NULL, CLI_OPTION_RETRY_ON},                \
		{"deadline", required_argument, NULL, CLI_OPTION_DEADLINE},                \
		{"priority", required_argument, NULL, CLI_OPTION_PRIORITY},                \
		{"queue", required_argument, NULL, CLI_OPTION_QUEUE}

/* The options' lines for a command's --help. */
#define CLI_SCHEDULE_HELP                                                                  \
	"scheduling (the job waits in state 'waiting' until it may start):\n"               \
	"  --after ID        start once job ID has finished (repeatable: all of them);\n"   \
	"                    if one fails or is cancelled, the job fails with\n"           \
	"                    DependencyFailed\n"                                           \
	"  --after-always    start once they have finished, whatever their outcome\n"       \
	"  --delay S         start S seconds from now\n"                                   \
	"  --at UNIXTIME     start at this Unix time (seconds; not with --delay)\n"         \
	"  --retries N       run a failed job again, up to N (0 to 100) more times\n"      \
	"  --retry-backoff S      the first pause before a retry (default 1), doubled\n"   \
	"                         after each one\n"                                        \
	"  --retry-backoff-max S  the longest pause (default 60)\n"                        \
	"  --retry-on TYPE   retry only failures of this error type (repeatable), such\n"   \
	"                    as Timeout or ExitStatus\n"                                   \
	"  --deadline UNIXTIME    fail the job with Deadline if it has not finished by\n"  \
	"                         then, waits and retries included\n"                      \
	"  --priority N      higher runs first among jobs waiting for the same slots\n"    \
	"                    (-1000 to 1000; default 0)\n"                                 \
	"  --queue NAME      run in the named queue (weft queue set NAME --max N), which\n" \
	"                    lets at most N of its jobs run at once\n"

/* Sets every field to "not given". */
void cli_schedule_init(cli_schedule *schedule);

/* Handles option (with its value optarg) when it is a scheduling option.
 * Returns true when it was one; then *exit_code is 0, or CLI_EXIT_USAGE after a
 * usage error was printed. */
bool cli_schedule_option(const cli_command *command, cli_schedule *schedule, int option,
                         const char *value, int *exit_code);

/* Checks the options together (--retry-backoff needs --retries, ...) by
 * applying them to a scratch spec; prints a usage error and returns
 * CLI_EXIT_USAGE when they do not fit, 0 otherwise. */
int cli_schedule_check(const cli_command *command, const cli_schedule *schedule);

/* Puts the options into spec. WEFT_OK or the libweft error (last error set). */
int cli_schedule_apply(const cli_schedule *schedule, weft_job_spec *spec);

#endif
