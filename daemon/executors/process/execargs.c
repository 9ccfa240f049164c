/*
 * execargs: checks the `exec` arguments (see execargs.h for the list).
 *
 * The checks run in a fixed order (unknown names first, then argv/shell,
 * env, cwd, stdin, the flags, limits) so the same bad input always gets the
 * same message. The result is built in one struct and handed out only when
 * every check passed.
 */
#include "daemon/executors/process/execargs.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/error.h"

#define EXECARGS_LIMIT_ROW_(wire, resource, unit) {wire, resource, 0},
static const struct execargs_limit limit_table[] = {EXECARGS_LIMIT_MAP(EXECARGS_LIMIT_ROW_)};
#undef EXECARGS_LIMIT_ROW_
#define LIMIT_TABLE_COUNT (sizeof(limit_table) / sizeof(limit_table[0]))
_Static_assert(LIMIT_TABLE_COUNT <= EXECARGS_MAX_LIMITS, "EXECARGS_MAX_LIMITS is too small");

static const char *const known_names[] = {"argv", "shell", "env", "env_clear", "cwd",
	"umask", "stdin", "capture", "kill_after", "limits", "output_wait", "output_spool", "stdin_stream", "items"};
#define KNOWN_NAMES_LIST \
	"argv, shell, env, env_clear, cwd, umask, stdin, capture, kill_after, limits, output_wait, output_spool, stdin_stream, items"

/* Whole numbers above this lose precision in a JSON double; no rlimit needs more. */
#define LIMIT_VALUE_MAX ((json_int_t)1 << 53)

static int refuse(struct execargs_error *error, int code, const char *field, const char *format,
	...) __attribute__((format(printf, 4, 5)));

static int refuse(struct execargs_error *error, int code, const char *field, const char *format, ...)
{
	if (error != NULL) {
		va_list list;
		error->code = code;
		snprintf(error->field, sizeof(error->field), "%s", field != NULL ? field : "");
		va_start(list, format);
		vsnprintf(error->message, sizeof(error->message), format, list);
		va_end(list);
	}
	return code;
}

static int refuse_memory(struct execargs_error *error)
{
	return refuse(error, WEFT_ENOMEM, NULL, "out of memory while reading the exec arguments");
}

const struct execargs_limit *execargs_limit_find(const char *name)
{
	for (size_t i = 0; i < LIMIT_TABLE_COUNT; i++)
		if (strcmp(limit_table[i].name, name) == 0)
			return &limit_table[i];
	return NULL;
}

/* A JSON string that execve can take: no NUL inside. */
static bool string_is_c_string(const json_t *value)
{
	return strlen(json_string_value(value)) == json_string_length(value);
}

static bool name_is_known(const char *name)
{
	for (size_t i = 0; i < sizeof(known_names) / sizeof(known_names[0]); i++)
		if (strcmp(known_names[i], name) == 0)
			return true;
	return false;
}

static int parse_argv(const json_t *argv, struct execargs *parsed, struct execargs_error *error)
{
	char field[64];
	size_t count;

	if (!json_is_array(argv))
		return refuse(error, WEFT_EBADARGS, "args.argv",
			"argv must be an array of strings, like [\"ls\", \"-l\"]");
	count = json_array_size(argv);
	if (count == 0)
		return refuse(error, WEFT_EBADARGS, "args.argv",
			"argv must hold at least the command, like [\"ls\"]");
	for (size_t i = 0; i < count; i++) {
		const json_t *item = json_array_get(argv, i);
		snprintf(field, sizeof(field), "args.argv[%zu]", i);
		if (!json_is_string(item))
			return refuse(error, WEFT_EBADARGS, field, "%s must be a string", field + 5);
		if (!string_is_c_string(item))
			return refuse(error, WEFT_EBADARGS, field,
				"%s contains a NUL character, which a command line cannot hold", field + 5);
	}
	if (json_string_length(json_array_get(argv, 0)) == 0)
		return refuse(error, WEFT_EBADARGS, "args.argv[0]",
			"argv[0] must name the command; it is empty");

	parsed->argv = calloc(count + 1, sizeof(char *));
	if (parsed->argv == NULL)
		return refuse_memory(error);
	for (size_t i = 0; i < count; i++) {
		parsed->argv[i] = strdup(json_string_value(json_array_get(argv, i)));
		if (parsed->argv[i] == NULL)
			return refuse_memory(error);
		parsed->argc = i + 1;
	}
	return WEFT_OK;
}

static int parse_shell(const json_t *shell, struct execargs *parsed, struct execargs_error *error)
{
	static const char *const prefix[] = {"/bin/sh", "-c"};

	if (!json_is_string(shell))
		return refuse(error, WEFT_EBADARGS, "args.shell",
			"shell must be a string for /bin/sh -c, like \"ls -l | wc -l\"");
	if (!string_is_c_string(shell))
		return refuse(error, WEFT_EBADARGS, "args.shell",
			"shell contains a NUL character, which a command line cannot hold");
	if (json_string_length(shell) == 0)
		return refuse(error, WEFT_EBADARGS, "args.shell", "shell is empty; give the command to run");

	parsed->shell = true;
	parsed->argv = calloc(4, sizeof(char *));
	if (parsed->argv == NULL)
		return refuse_memory(error);
	for (size_t i = 0; i < 3; i++) {
		parsed->argv[i] = strdup(i < 2 ? prefix[i] : json_string_value(shell));
		if (parsed->argv[i] == NULL)
			return refuse_memory(error);
		parsed->argc = i + 1;
	}
	return WEFT_OK;
}

static bool env_key_is_reserved(const char *key)
{
	return strcmp(key, "NOTIFY_SOCKET") == 0 || strncmp(key, "WATCHDOG_", 9) == 0;
}

static int compare_strings(const void *left, const void *right)
{
	return strcmp(*(char *const *)left, *(char *const *)right);
}

static int parse_env(const json_t *env, struct execargs *parsed, struct execargs_error *error)
{
	char field[160];
	const char *key;
	const json_t *value;
	size_t count;

	if (!json_is_object(env))
		return refuse(error, WEFT_EBADARGS, "args.env",
			"env must be an object of strings, like {\"LANG\": \"C\"}");
	json_object_foreach((json_t *)env, key, value) {
		snprintf(field, sizeof(field), "args.env.%s", key);
		if (key[0] == '\0')
			return refuse(error, WEFT_EBADARGS, "args.env",
				"env has an empty variable name; give each variable a name");
		if (strchr(key, '=') != NULL)
			return refuse(error, WEFT_EBADARGS, field,
				"environment variable names cannot contain '='");
		if (env_key_is_reserved(key))
			return refuse(error, WEFT_EBADARGS, field,
				"%s belongs to the service manager; jobs cannot set NOTIFY_SOCKET or WATCHDOG_*",
				key);
		if (!json_is_string(value))
			return refuse(error, WEFT_EBADARGS, field, "env.%s must be a string", key);
		if (!string_is_c_string(value))
			return refuse(error, WEFT_EBADARGS, field,
				"env.%s contains a NUL character, which the environment cannot hold", key);
	}
	/* jansson keys cannot hold NUL through this API, so strlen is the key length. */
	count = json_object_size(env);
	parsed->env = calloc(count + 1, sizeof(char *));
	if (parsed->env == NULL)
		return refuse_memory(error);
	json_object_foreach((json_t *)env, key, value) {
		size_t key_length = strlen(key);
		size_t value_length = json_string_length(value);
		char *entry = malloc(key_length + 1 + value_length + 1);
		if (entry == NULL)
			return refuse_memory(error);
		memcpy(entry, key, key_length);
		entry[key_length] = '=';
		memcpy(entry + key_length + 1, json_string_value(value), value_length + 1);
		parsed->env[parsed->env_count++] = entry;
	}
	/* Key order makes the child's environment independent of the JSON order. */
	qsort(parsed->env, parsed->env_count, sizeof(char *), compare_strings);
	return WEFT_OK;
}

/*
 * What execve would refuse with E2BIG is refused here, before the job is
 * accepted, and it bounds the work of preparing a command on a worker loop:
 * each string at most EXECARGS_MAX_STRING bytes, argv and env together at
 * most EXECARGS_MAX_ARG_BYTES counting a pointer per string, as the kernel does.
 */
static int check_size(const struct execargs *parsed, struct execargs_error *error)
{
	size_t total = 0;
	for (size_t pass = 0; pass < 2; pass++) {
		char **strings = pass == 0 ? parsed->argv : parsed->env;
		size_t count = pass == 0 ? parsed->argc : parsed->env_count;
		for (size_t i = 0; i < count; i++) {
			size_t length = strlen(strings[i]) + 1;
			if (length > EXECARGS_MAX_STRING)
				return refuse(error, WEFT_EBADARGS, pass == 0 ? "args.argv" : "args.env",
					"%s holds a string of %zu bytes; the kernel takes at most %d bytes "
					"per argument or variable: pass large data through stdin or a file",
					pass == 0 ? "argv" : "env", length, EXECARGS_MAX_STRING);
			total += length + sizeof(char *);
		}
	}
	if (total > EXECARGS_MAX_ARG_BYTES)
		return refuse(error, WEFT_EBADARGS, parsed->env_count > 0 ? "args.env" : "args.argv",
			"argv and env take %zu bytes (%zu variables); a command takes at most %d: "
			"pass large data through stdin or a file",
			total, parsed->env_count, EXECARGS_MAX_ARG_BYTES);
	return WEFT_OK;
}

static int parse_limits(const json_t *limits, struct execargs *parsed, struct execargs_error *error)
{
	char field[160];
	const char *key;
	const json_t *value;

	if (!json_is_object(limits))
		return refuse(error, WEFT_EBADARGS, "args.limits",
			"limits must be an object like {\"nofile\": 256, \"cpu\": 60}");
	json_object_foreach((json_t *)limits, key, value) {
		const struct execargs_limit *row = execargs_limit_find(key);
		struct execargs_limit *limit;
		snprintf(field, sizeof(field), "args.limits.%s", key);
		if (strcmp(key, "memory") == 0 || strcmp(key, "tasks") == 0) {
			bool memory = key[0] == 'm';
			json_int_t least = memory ? 1024 * 1024 : 1;
			if (!json_is_integer(value) || json_integer_value(value) < least ||
			    json_integer_value(value) > LIMIT_VALUE_MAX)
				return refuse(error, WEFT_EBADARGS, field,
					memory ? "limits.memory must be a whole number of bytes from 1048576 "
					         "(1 MiB) to 2^53"
					       : "limits.tasks must be a whole number of processes from 1 to "
					         "2^53");
			*(memory ? &parsed->memory_max : &parsed->tasks_max) =
				(uint64_t)json_integer_value(value);
			continue;
		}
		if (row == NULL)
			return refuse(error, WEFT_EBADARGS, field,
				"unknown limit '%s'; the limits are as, core, cpu, data, fsize, locks, memlock, "
				"msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack, and "
				"memory and tasks (for the job's cgroup)",
				key);
		limit = &parsed->limits[parsed->limit_count];
		*limit = *row;
		if (json_is_string(value) && strcmp(json_string_value(value), "unlimited") == 0) {
			limit->value = RLIM_INFINITY;
		} else if (json_is_integer(value) && json_integer_value(value) >= 0 &&
			   json_integer_value(value) <= LIMIT_VALUE_MAX) {
			limit->value = (rlim_t)json_integer_value(value);
		} else {
			return refuse(error, WEFT_EBADARGS, field,
				"limits.%s must be a whole number from 0 to 2^53, or \"unlimited\"", key);
		}
		parsed->limit_count++;
	}
	return WEFT_OK;
}

static int parse_string(const json_t *value, const char *name, char **out, size_t *length,
	struct execargs_error *error)
{
	char field[32];

	snprintf(field, sizeof(field), "args.%s", name);
	if (!json_is_string(value))
		return refuse(error, WEFT_EBADARGS, field, "%s must be a string", name);
	if (!string_is_c_string(value))
		return refuse(error, WEFT_EBADARGS, field,
			"%s contains a NUL character, which it cannot hold", name);
	*out = strdup(json_string_value(value));
	if (*out == NULL)
		return refuse_memory(error);
	if (length != NULL)
		*length = json_string_length(value);
	return WEFT_OK;
}

static int parse_bool(const json_t *value, const char *name, bool *out, struct execargs_error *error)
{
	char field[32];

	snprintf(field, sizeof(field), "args.%s", name);
	if (!json_is_boolean(value))
		return refuse(error, WEFT_EBADARGS, field, "%s must be true or false", name);
	*out = json_is_true(value);
	return WEFT_OK;
}

int execargs_parse(const json_t *args, struct execargs **out, struct execargs_error *error)
{
	struct execargs *parsed = NULL;
	const json_t *argv, *shell, *value;
	const char *key;
	int rv;

	if (args == NULL || !json_is_object(args)) {
		if (args != NULL)
			return refuse(error, WEFT_EBADARGS, "args",
				"args must be an object, like {\"argv\": [\"true\"]}");
		return refuse(error, WEFT_EBADARGS, "args",
			"exec needs argv (an array of strings) or shell (a string)");
	}
	json_object_foreach((json_t *)args, key, value) {
		if (!name_is_known(key)) {
			char field[160];
			snprintf(field, sizeof(field), "args.%s", key);
			return refuse(error, WEFT_EBADARGS, field,
				"exec has no argument '%s'; it takes " KNOWN_NAMES_LIST, key);
		}
	}

	argv = json_object_get(args, "argv");
	shell = json_object_get(args, "shell");
	if (argv != NULL && shell != NULL)
		return refuse(error, WEFT_EBADARGS, "args.shell",
			"give either argv (no shell) or shell (a /bin/sh -c string), not both");
	if (argv == NULL && shell == NULL)
		return refuse(error, WEFT_EBADARGS, "args",
			"exec needs argv (an array of strings) or shell (a string)");

	parsed = calloc(1, sizeof(*parsed));
	if (parsed == NULL)
		return refuse_memory(error);
	parsed->capture = true;
	parsed->kill_after = EXECARGS_DEFAULT_KILL_AFTER;
	parsed->umask = 022;

	if ((rv = argv != NULL ? parse_argv(argv, parsed, error) : parse_shell(shell, parsed, error)) != 0)
		goto fail;
	if ((value = json_object_get(args, "env")) != NULL && (rv = parse_env(value, parsed, error)) != 0)
		goto fail;
	if ((rv = check_size(parsed, error)) != 0)
		goto fail;
	if ((value = json_object_get(args, "env_clear")) != NULL &&
		(rv = parse_bool(value, "env_clear", &parsed->env_clear, error)) != 0)
		goto fail;
	if ((value = json_object_get(args, "cwd")) != NULL) {
		if ((rv = parse_string(value, "cwd", &parsed->cwd, NULL, error)) != 0)
			goto fail;
		if (parsed->cwd[0] == '\0') {
			rv = refuse(error, WEFT_EBADARGS, "args.cwd",
				"cwd is empty; give a directory or leave cwd out");
			goto fail;
		}
	}
	if ((value = json_object_get(args, "umask")) != NULL) {
		if (!json_is_integer(value) || json_integer_value(value) < 0 ||
			json_integer_value(value) > 0777) {
			rv = refuse(error, WEFT_EBADARGS, "args.umask",
				"umask must be an integer from 0 to 511 (0777), like 18 for 022");
			goto fail;
		}
		parsed->umask = (unsigned)json_integer_value(value);
	}
	if ((value = json_object_get(args, "stdin")) != NULL &&
		(rv = parse_string(value, "stdin", &parsed->stdin_data, &parsed->stdin_length, error)) != 0)
		goto fail;
	if ((value = json_object_get(args, "capture")) != NULL &&
		(rv = parse_bool(value, "capture", &parsed->capture, error)) != 0)
		goto fail;
	if ((value = json_object_get(args, "output_wait")) != NULL &&
		(rv = parse_bool(value, "output_wait", &parsed->output_wait, error)) != 0)
		goto fail;
	if ((value = json_object_get(args, "output_spool")) != NULL &&
		(rv = parse_bool(value, "output_spool", &parsed->output_spool, error)) != 0)
		goto fail;
	if ((value = json_object_get(args, "stdin_stream")) != NULL &&
		(rv = parse_bool(value, "stdin_stream", &parsed->stdin_stream, error)) != 0)
		goto fail;
	if (parsed->stdin_stream && parsed->stdin_data != NULL) {
		rv = refuse(error, WEFT_EBADARGS, "args.stdin_stream",
			"give either stdin (a string) or stdin_stream (bytes sent with the input op), "
			"not both");
		goto fail;
	}
	if ((value = json_object_get(args, "items")) != NULL) {
		if (!json_is_string(value) || strcmp(json_string_value(value), "lines") != 0) {
			rv = refuse(error, WEFT_EBADARGS, "args.items",
				"items must be \"lines\" (each line of stdout is one item), or left out");
			goto fail;
		}
		if (!parsed->capture) {
			rv = refuse(error, WEFT_EBADARGS, "args.items",
				"items \"lines\" reads stdout, which capture false sends to /dev/null; "
				"drop one of them");
			goto fail;
		}
		parsed->item_lines = true;
	}
	if ((value = json_object_get(args, "kill_after")) != NULL) {
		double seconds = json_number_value(value);
		if (!json_is_number(value) || !isfinite(seconds) || seconds < 0 ||
			seconds > EXECARGS_MAX_KILL_AFTER) {
			rv = refuse(error, WEFT_EBADARGS, "args.kill_after",
				"kill_after must be a number of seconds from 0 to 86400");
			goto fail;
		}
		parsed->kill_after = seconds;
	}
	if ((value = json_object_get(args, "limits")) != NULL &&
		(rv = parse_limits(value, parsed, error)) != 0)
		goto fail;

	*out = parsed;
	return WEFT_OK;

fail:
	execargs_free(parsed);
	return rv;
}

static void free_strings(char **strings)
{
	if (strings == NULL)
		return;
	for (size_t i = 0; strings[i] != NULL; i++)
		free(strings[i]);
	free(strings);
}

void execargs_free(struct execargs *args)
{
	if (args == NULL)
		return;
	free(args->stdin_data);
	free(args->cwd);
	free_strings(args->env);
	free_strings(args->argv);
	free(args);
}
