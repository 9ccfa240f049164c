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

int cli_add_label(const cli_command *command, char *text, const char *example, json_t *labels)
{
	char *key, *value;
	if (!cli_parse_label(text, &key, &value))
		return cli_usage_error(command, "--label takes KEY=VALUE, such as %s", example);
	/* json_string refuses text that is not UTF-8, and so does a key. */
	if (json_object_set_new(labels, key, json_string(value)) != 0)
		return cli_usage_error(command, "--label %s: the key and value must be UTF-8 text",
		                       key);
	return 0;
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

int cli_run_subcommand(const cli_command *command, cli_globals *globals, int argc, char **argv,
                       const cli_command *const *subcommands, size_t count)
{
	/* argv[0] is the command's word; the subcommand's comes next, possibly
	 * after global options ("weft future --json new"). */
	int first = 1;
	while (first < argc && argv[first][0] == '-') {
		if (strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0) {
			cli_print_command_help(command);
			return CLI_EXIT_OK;
		} else if (strcmp(argv[first], "--json") == 0) {
			globals->json = true;
			first++;
		} else if (strcmp(argv[first], "--url") == 0 && first + 1 < argc) {
			globals->url = argv[first + 1];
			first += 2;
		} else if (strncmp(argv[first], "--url=", 6) == 0) {
			globals->url = argv[first] + 6;
			first++;
		} else {
			return cli_usage_error(command, "unknown option '%s' before the subcommand",
			                       argv[first]);
		}
	}
	/* Subcommands are named "COMMAND WORD". */
	size_t prefix = strlen(command->name) + 1;
	char names[256] = "";
	for (size_t i = 0; i < count; i++) {
		strncat(names, i == 0 ? "" : (i + 1 == count ? " or " : ", "),
		        sizeof(names) - strlen(names) - 1);
		strncat(names, subcommands[i]->name + prefix, sizeof(names) - strlen(names) - 1);
	}
	if (first >= argc)
		return cli_usage_error(command, "which one: %s?", names);
	for (size_t i = 0; i < count; i++) {
		if (strcmp(subcommands[i]->name + prefix, argv[first]) == 0) {
			/* 0 makes glibc's getopt start afresh on the subcommand's words. */
			optind = 0;
			return subcommands[i]->run(subcommands[i], globals, argc - first, argv + first);
		}
	}
	return cli_usage_error(command, "unknown subcommand '%s'; it is one of %s", argv[first],
	                       names);
}
