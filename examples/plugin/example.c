/*
 * An example weft plugin (include/weft/plugin.h) with two functions:
 *
 *   example.add       {"a": N, "b": N, "delay": S}  -> a + b, after S seconds
 *       loop code: it waits on the worker's timer (weft_sleep), so thousands
 *       can wait at once on one thread, and a cancel ends the wait;
 *   example.blocking  {"seconds": S}                -> {"slept": S, "uid": U}
 *       blocking code: it calls nanosleep, which would stall a worker loop,
 *       so weftd runs it on its thread pool.
 *
 * Build: make examples (build/examples/plugin/example.so); load:
 *   weftd --plugin build/examples/plugin/example.so
 *   weft call example.add '{"a": 1, "b": 2}' --wait 10
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include <weft/plugin.h>
#include <weft/task.h>

static const struct weft_plugin_argument add_arguments[] = {
	{"a", "number (required)"},
	{"b", "number (required)"},
	{"delay", "number >= 0 (optional): seconds to wait first; 0 by default"},
	{NULL, NULL},
};

static int add_check(const json_t *args, char *message, size_t size)
{
	if (!json_is_number(json_object_get(args, "a")) || !json_is_number(json_object_get(args, "b"))) {
		snprintf(message, size, "'a' and 'b' must be numbers");
		return -1;
	}
	const json_t *delay = json_object_get(args, "delay");
	if (delay != NULL && (!json_is_number(delay) || json_number_value(delay) < 0 ||
	                      json_number_value(delay) > 3600)) {
		snprintf(message, size, "'delay' must be a number of seconds from 0 to 3600");
		return -1;
	}
	return 0;
}

/* Task code on a worker loop. */
static int add_run(struct weft_plugin_call *call)
{
	const json_t *delay = json_object_get(call->args, "delay");
	if (delay != NULL) {
		int rv = weft_sleep(json_number_value(delay));
		if (rv != WEFT_OK)
			return rv; /* cancelled */
	}
	const json_t *a = json_object_get(call->args, "a"), *b = json_object_get(call->args, "b");
	if (json_is_integer(a) && json_is_integer(b))
		call->result = json_integer(json_integer_value(a) + json_integer_value(b));
	else
		call->result = json_real(json_number_value(a) + json_number_value(b));
	return WEFT_OK;
}

static const struct weft_plugin_argument blocking_arguments[] = {
	{"seconds", "number from 0 to 60 (required): how long to block its thread"},
	{NULL, NULL},
};

static int blocking_check(const json_t *args, char *message, size_t size)
{
	const json_t *seconds = json_object_get(args, "seconds");
	if (!json_is_number(seconds) || json_number_value(seconds) < 0 ||
	    json_number_value(seconds) > 60) {
		snprintf(message, size, "'seconds' must be a number from 0 to 60");
		return -1;
	}
	return 0;
}

/* A pool thread: blocking is fine here. */
static int blocking_run(struct weft_plugin_call *call)
{
	double seconds = json_number_value(json_object_get(call->args, "seconds"));
	struct timespec left = {.tv_sec = (time_t)seconds,
	                        .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
	while (nanosleep(&left, &left) != 0 && errno == EINTR)
		;
	call->result = json_pack("{s:f, s:I}", "slept", seconds, "uid", (json_int_t)call->owner_uid);
	return WEFT_OK;
}

static const struct weft_plugin_function functions[] = {
	{
		.name = "example.add",
		.summary = "adds a and b after waiting delay seconds on the worker loop",
		.executor = WEFT_PLUGIN_LOOP,
		.arguments = add_arguments,
		.check = add_check,
		.run = add_run,
	},
	{
		.name = "example.blocking",
		.summary = "blocks a pool thread for seconds, then says so",
		.executor = WEFT_PLUGIN_THREAD,
		.arguments = blocking_arguments,
		.check = blocking_check,
		.run = blocking_run,
	},
};

static const struct weft_plugin plugin = {
	.abi = WEFT_PLUGIN_ABI,
	.name = "example",
	.functions = functions,
	.function_count = sizeof(functions) / sizeof(functions[0]),
};

const struct weft_plugin *weft_plugin_entry(void);
const struct weft_plugin *weft_plugin_entry(void)
{
	return &plugin;
}
