/* The scheduling options shared by call, submit and run; see schedule.h. */
#include "cli/schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_schedule_init(cli_schedule *schedule)
{
	schedule->after_count = 0;
	schedule->after_always = false;
	schedule->delay = -1;
	schedule->at = -1;
	schedule->retries = -1;
	schedule->retry_backoff = -1;
	schedule->retry_backoff_max = -1;
	schedule->retry_on_count = 0;
	schedule->deadline = -1;
}

/* A Unix time in seconds (fractions allowed), > 0. */
static bool parse_unix_time(const char *text, double *time)
{
	return cli_parse_seconds(text, time) && *time > 0;
}

bool cli_schedule_option(const cli_command *command, cli_schedule *schedule, int option,
                         const char *value, int *exit_code)
{
	*exit_code = 0;
	long long count = 0;
	switch (option) {
	case CLI_OPTION_AFTER:
		if (schedule->after_count == CLI_SCHEDULE_MAX_AFTER) {
			*exit_code = cli_usage_error(command, "--after is allowed at most %d times",
			                             CLI_SCHEDULE_MAX_AFTER);
		} else if (!cli_parse_id(value, &schedule->after[schedule->after_count])) {
			*exit_code = cli_usage_error(command, "--after takes a job id (a positive "
			                                      "integer), not '%s'",
			                             value);
		} else {
			schedule->after_count++;
		}
		return true;
	case CLI_OPTION_AFTER_ALWAYS:
		schedule->after_always = true;
		return true;
	case CLI_OPTION_DELAY:
		if (!cli_parse_seconds(value, &schedule->delay))
			*exit_code = cli_usage_error(command, "--delay takes seconds >= 0, such as 30");
		return true;
	case CLI_OPTION_AT:
		if (!parse_unix_time(value, &schedule->at))
			*exit_code = cli_usage_error(command, "--at takes a Unix time in seconds, such "
			                                      "as $(date -d '+1 hour' +%%s)");
		return true;
	case CLI_OPTION_RETRIES:
		/* 0 is a valid count ("no retries"), which cli_parse_count refuses. */
		if (value[0] == '0' && value[1] == '\0')
			schedule->retries = 0;
		else if (cli_parse_count(value, 100, &count))
			schedule->retries = count;
		else
			*exit_code = cli_usage_error(command, "--retries takes a count from 0 to 100");
		return true;
	case CLI_OPTION_RETRY_BACKOFF:
		if (!cli_parse_seconds(value, &schedule->retry_backoff))
			*exit_code = cli_usage_error(command, "--retry-backoff takes seconds >= 0");
		return true;
	case CLI_OPTION_RETRY_BACKOFF_MAX:
		if (!cli_parse_seconds(value, &schedule->retry_backoff_max))
			*exit_code = cli_usage_error(command, "--retry-backoff-max takes seconds >= 0");
		return true;
	case CLI_OPTION_RETRY_ON:
		if (schedule->retry_on_count == CLI_SCHEDULE_MAX_RETRY_ON)
			*exit_code = cli_usage_error(command, "--retry-on is allowed at most %d times",
			                             CLI_SCHEDULE_MAX_RETRY_ON);
		else
			schedule->retry_on[schedule->retry_on_count++] = value;
		return true;
	case CLI_OPTION_PRIORITY: {
		char *end;
		long priority = strtol(value, &end, 10);
		if (end == value || *end != '\0' || priority < -1000 || priority > 1000)
			*exit_code = cli_usage_error(command, "--priority takes an integer from -1000 "
			                                      "to 1000");
		else
			schedule->priority = (int)priority;
		return true;
	}
	case CLI_OPTION_QUEUE:
		if (value[0] == '\0' || strlen(value) > 64)
			*exit_code = cli_usage_error(command, "--queue takes a queue name of 1 to 64 "
			                                      "bytes");
		else
			schedule->queue = value;
		return true;
	case CLI_OPTION_DEADLINE:
		if (!parse_unix_time(value, &schedule->deadline))
			*exit_code = cli_usage_error(command, "--deadline takes a Unix time in seconds, "
			                                      "such as $(date -d '+1 hour' +%%s)");
		return true;
	default:
		return false;
	}
}

int cli_schedule_apply(const cli_schedule *schedule, weft_job_spec *spec)
{
	int rv = WEFT_OK;
	for (size_t i = 0; i < schedule->after_count && rv == 0; i++)
		rv = weft_job_spec_add_after(spec, schedule->after[i]);
	if (rv == 0 && schedule->after_always)
		rv = weft_job_spec_set_after_always(spec, true);
	if (rv == 0 && schedule->delay >= 0)
		rv = weft_job_spec_set_delay(spec, schedule->delay);
	if (rv == 0 && schedule->at >= 0)
		rv = weft_job_spec_set_at(spec, schedule->at);
	if (rv == 0 && schedule->retries >= 0)
		rv = weft_job_spec_set_retries(spec, (int)schedule->retries, schedule->retry_backoff,
		                               schedule->retry_backoff_max);
	for (size_t i = 0; i < schedule->retry_on_count && rv == 0; i++)
		rv = weft_job_spec_add_retry_on(spec, schedule->retry_on[i]);
	if (rv == 0 && schedule->deadline >= 0)
		rv = weft_job_spec_set_deadline(spec, schedule->deadline);
	if (rv == 0 && schedule->priority != 0)
		rv = weft_job_spec_set_priority(spec, schedule->priority);
	if (rv == 0 && schedule->queue != NULL)
		rv = weft_job_spec_set_queue(spec, schedule->queue);
	return rv;
}

int cli_schedule_check(const cli_command *command, const cli_schedule *schedule)
{
	if (schedule->after_always && schedule->after_count == 0)
		return cli_usage_error(command, "--after-always needs --after ID");
	if (schedule->retries < 0 &&
	    (schedule->retry_backoff >= 0 || schedule->retry_backoff_max >= 0 ||
	     schedule->retry_on_count > 0))
		return cli_usage_error(command, "--retry-backoff, --retry-backoff-max and --retry-on "
		                                "need --retries N");
	if (schedule->delay >= 0 && schedule->at >= 0)
		return cli_usage_error(command, "give --delay or --at, not both");
	/* The library's own checks, so that the messages match and nothing is
	 * sent when they fail. */
	weft_job_spec *scratch = NULL;
	if (weft_job_spec_new("scratch", &scratch) != 0) {
		fprintf(stderr, "weft: out of memory\n");
		return CLI_EXIT_ERROR;
	}
	int exit_code = CLI_EXIT_OK;
	int rv = cli_schedule_apply(schedule, scratch);
	if (rv == WEFT_ENOMEM) {
		fprintf(stderr, "weft: out of memory\n");
		exit_code = CLI_EXIT_ERROR;
	} else if (rv != 0) {
		exit_code = cli_usage_error(command, "%s", weft_last_error()->message);
	}
	weft_job_spec_free(scratch);
	return exit_code;
}
