/* Parsing of the CLI's arguments; see cli.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

bool cli_parse_seconds(const char *text, double *seconds)
{
	char *end = NULL;
	errno = 0;
	double value = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || !isfinite(value) || value < 0)
		return false;
	*seconds = value;
	return true;
}

bool cli_parse_count(const char *text, long long max, long long *count)
{
	char *end = NULL;
	errno = 0;
	long long value = strtoll(text, &end, 10);
	if (end == text || *end != '\0' || errno != 0 || value < 1 || value > max)
		return false;
	*count = value;
	return true;
}

bool cli_parse_id(const char *text, uint64_t *id)
{
	long long value;
	if (!cli_parse_count(text, 1LL << 53, &value))
		return false;
	*id = (uint64_t)value;
	return true;
}

bool cli_parse_label(char *text, char **key, char **value)
{
	char *equals = strchr(text, '=');
	if (equals == NULL || equals == text)
		return false;
	*equals = '\0';
	*key = text;
	*value = equals + 1;
	return true;
}

int cli_parse_json_object(const cli_command *command, const char *what, const char *text,
                          json_t **out)
{
	json_error_t error;
	json_t *value;
	const char *source = text;
	if (strcmp(text, "-") == 0) {
		value = json_loadf(stdin, 0, &error);
		source = "stdin";
	} else if (text[0] == '@') {
		value = json_load_file(text + 1, 0, &error);
		source = text + 1;
	} else {
		/* JSON_DECODE_ANY so that "42" gets "must be an object" rather
		 * than a parse error. */
		value = json_loads(text, JSON_DECODE_ANY, &error);
		source = NULL;
	}
	if (value == NULL) {
		if (source != NULL)
			return cli_usage_error(command, "%s from %s is not valid JSON: %s (line %d)",
			                       what, source, error.text, error.line);
		return cli_usage_error(command,
		                       "%s is not valid JSON: %s (column %d); write an object "
		                       "such as '{\"value\": 42}', quoted for the shell",
		                       what, error.text, error.column);
	}
	if (!json_is_object(value)) {
		json_decref(value);
		return cli_usage_error(command,
		                       "%s must be a JSON object such as '{\"seconds\": 1}'", what);
	}
	*out = value;
	return CLI_EXIT_OK;
}
