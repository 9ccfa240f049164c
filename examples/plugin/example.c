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
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <weft/plugin.h>
#include <weft/task.h>

/* weftd checks these at submit (types, required, bounds) before the
 * plugin's own check sees the arguments. */
static const struct weft_plugin_argument add_arguments[] = {
	{"a", "the first term", WEFT_PLUGIN_NUMBER, .required = 1},
	{"b", "the second term", WEFT_PLUGIN_NUMBER, .required = 1},
	{"delay", "seconds to wait first; 0 by default", WEFT_PLUGIN_NUMBER, .minimum = 0, .maximum = 3600},
	{NULL},
};

/* What a declaration cannot say. */
static int add_check(const json_t *args, char *message, size_t size)
{
	const json_t *a = json_object_get(args, "a"), *b = json_object_get(args, "b");
	if (json_is_integer(a) && json_is_integer(b) &&
	    ((json_integer_value(b) > 0 && json_integer_value(a) > INT64_MAX - json_integer_value(b)) ||
	     (json_integer_value(b) < 0 && json_integer_value(a) < INT64_MIN - json_integer_value(b)))) {
		snprintf(message, size, "'a' + 'b' would overflow a 64-bit integer");
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
	{"seconds", "how long to block its thread", WEFT_PLUGIN_NUMBER, .required = 1, .minimum = 0,
	 .maximum = 60},
	{NULL},
};

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
