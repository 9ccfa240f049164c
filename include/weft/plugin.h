/*
 * weft plugins: functions of your own, loaded into weftd at start
 * (`weftd --plugin PATH.so`, repeatable, or `weftd --plugin-dir DIR`, every
 * *.so in DIR in name order), without forking weftd.
 *
 * A plugin is a shared object that exports one function, weft_plugin_entry,
 * returning a static description of the plugin: its ABI version (first, so
 * that every weftd can read it), its name and its functions. weftd refuses a
 * plugin built for another WEFT_PLUGIN_ABI, and stops with a message.
 *
 * Each function runs as a coroutine task of weftd's runtime, in one of two
 * ways (its `executor`):
 *  - WEFT_PLUGIN_LOOP: `run` is task code on the worker loops. It may wait in
 *    the calls of weft/task.h (weft_sleep, weft_wait_fd, weft_notify_wait...),
 *    weft/jobs.h (weft_await_job) and weft/executor.h (weft_run_in_thread,
 *    for a blocking library), and must never block the thread otherwise.
 *    Cancelling the job cancels the task: the wait in progress returns
 *    WEFT_ECANCELED.
 *  - WEFT_PLUGIN_THREAD: `run` may block; weftd calls it on its thread pool
 *    (--threads). A call that has started cannot be interrupted: a cancelled
 *    job's call runs to its end and its result is dropped.
 *
 * Arguments: each function declares the arguments it takes, with a type,
 * whether it is required and optional bounds. weftd checks them at submit,
 * before the plugin's own check (if any) sees the arguments: a job with an
 * undeclared name, a missing required argument, a value of another type or
 * out of its bounds is refused with bad_arguments, naming the argument.
 * The declarations are listed by the functions op.
 *
 * Trust: a plugin is code inside weftd and has weftd's rights (root for the
 * system daemon): on a root daemon only files owned by root and writable by
 * no one else load, and only from a --plugin-dir that is root's alone. `owner_uid`/`owner_gid` say whose job it is; a plugin
 * that acts for users must check them itself.
 *
 * Build: cc -shared -fPIC -I<weft>/include $(pkg-config --cflags jansson)
 * plugin.c -o plugin.so; the weft_* symbols resolve in weftd. See
 * examples/plugin/.
 */
#ifndef WEFT_PLUGIN_H
#define WEFT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "weft/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bump when any struct below changes. 2: arguments carry a type, required
 * and bounds (a plugin built for 1 is refused: rebuild it; sources built for
 * 1 still compile, their arguments then of any type and optional). */
#define WEFT_PLUGIN_ABI 2

enum weft_plugin_executor {
	WEFT_PLUGIN_LOOP = 1,   /* task code on the worker loops; never blocks */
	WEFT_PLUGIN_THREAD = 2, /* blocking code on the thread pool */
};

/* What an argument's value must be. */
enum weft_plugin_type {
	WEFT_PLUGIN_ANY = 0,  /* any JSON value */
	WEFT_PLUGIN_STRING,   /* a JSON string */
	WEFT_PLUGIN_INTEGER,  /* a JSON integer */
	WEFT_PLUGIN_NUMBER,   /* a JSON integer or real */
	WEFT_PLUGIN_BOOLEAN,  /* true or false */
	WEFT_PLUGIN_ARRAY,    /* a JSON array */
	WEFT_PLUGIN_OBJECT,   /* a JSON object */
};

/* One argument, as `weft functions` lists it and weftd checks it. */
struct weft_plugin_argument {
	const char *name;
	const char *description; /* meaning, for people */
	enum weft_plugin_type type;
	int required; /* non-zero: a job must give it */
	/* When maximum > minimum, the bounds (inclusive) of a number's value, of
	 * a string's length in bytes or of an array's size; otherwise none. */
	double minimum, maximum;
};

/* One job's call. weftd fills the inputs; run fills the outputs. */
struct weft_plugin_call {
	const json_t *args; /* borrowed: the job's arguments, accepted by check */
	uint32_t owner_uid; /* who submitted the job */
	uint32_t owner_gid;
	json_t *result;     /* set by run on success (a new reference weftd takes); NULL: null */
	char error_type[32];     /* on failure: the job's error type ("ValueError"); default "PluginError" */
	char error_message[512]; /* on failure: for people */
};

struct weft_plugin_function {
	const char *name;    /* "<plugin name>.<function>", at most 64 bytes of [a-z0-9_.-] */
	const char *summary; /* one line */
	enum weft_plugin_executor executor;
	/* The arguments it takes, ending with a {NULL} row; weftd refuses any
	 * other name, and values not as declared, at submit. */
	const struct weft_plugin_argument *arguments;
	/* Optional: validates the arguments at submit, on any thread, without
	 * blocking, after weftd checked them against `arguments`. Returns 0, or
	 * non-zero having written what to change into message[size]. */
	int (*check)(const json_t *args, char *message, size_t size);
	/* The work. Returns WEFT_OK with call->result set (or NULL), or an error
	 * code (WEFT_ECANCELED when a wait was cancelled) with error_type and
	 * error_message filled. */
	int (*run)(struct weft_plugin_call *call);
};

struct weft_plugin {
	uint32_t abi; /* WEFT_PLUGIN_ABI; always the first field */
	const char *name; /* 1 to 32 bytes of [a-z0-9_-]; prefixes its functions' names */
	const struct weft_plugin_function *functions;
	size_t function_count;
};

/* The symbol weftd looks up: returns a static description. */
#define WEFT_PLUGIN_ENTRY "weft_plugin_entry"
typedef const struct weft_plugin *(*weft_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif
#endif
