/*
 * blocking: the built-in functions that block a thread and therefore run on
 * the thread pool (daemon/executors/thread/threadpool.h), never on a worker loop.
 *
 *   sleep.blocking  {"seconds": N}                 -> null, after N seconds
 *   file.sha256     {"path": "..."}                -> {"sha256": "<64 hex>", "size": N}
 *   dns.resolve     {"host": "...", "family": ...} -> {"addresses": ["127.0.0.1", ...]}
 *
 * Each function has two halves:
 *   - check: validates the arguments when the job is submitted, on whatever
 *     thread handles the request. Pure: no I/O, no allocation.
 *   - run: does the work on a pool thread and may block for as long as the
 *     work takes. It reads the arguments (borrowed: nobody may modify them
 *     while it runs; reading them from another thread at the same time is
 *     fine) and reports a struct blocking_outcome.
 * run is only called with arguments that check accepted.
 *
 * The table blocking_functions lists them, with their argument descriptions,
 * for the daemon's `functions` op and for dispatch by name.
 */
#ifndef DAEMON_BLOCKING_H
#define DAEMON_BLOCKING_H

#include <jansson.h>
#include <stddef.h>

#include "daemon/executors/thread/threadpool.h"

#define BLOCKING_ERROR_TYPE_SIZE 32
#define BLOCKING_ERROR_MESSAGE_SIZE 512

/* What a run reports. The caller provides it (any contents); run fills it. */
struct blocking_outcome {
	/* On success: the function's result, a new reference the caller owns
	 * (json null for sleep.blocking). On failure: NULL. */
	json_t *result;
	/* On failure: the job's error type ("OSError", "DNSError", "Cancelled",
	 * "MemoryError") and a message for people. Empty strings on success. */
	char error_type[BLOCKING_ERROR_TYPE_SIZE];
	char error_message[BLOCKING_ERROR_MESSAGE_SIZE];
};

/*
 * Validates `args` (borrowed; NULL counts as an empty object). Any thread.
 * Returns WEFT_OK, or WEFT_EBADARGS having written a message that says what
 * to change into message[size] (always NUL-terminated when size > 0, valid
 * UTF-8 even when cut short; it starts with the function's name, as in
 * "dns.resolve: 'family' must be \"inet\", \"inet6\" or \"any\"") and, when one
 * argument is at fault, its name to *field (a static string or a key borrowed
 * from args; the daemon prefixes "args."); *field is set to NULL when the
 * fault is not one argument's. Unknown argument names are rejected.
 */
typedef int blocking_check_fn(const json_t *args, char *message, size_t size, const char **field);

/*
 * Whose rights a call has: files are opened through open_regular, which
 * opens `path` for reading with the rights of the job's owner, regular files
 * only, with the contract of principal_open_regular (daemon/core/principal.h):
 * WEFT_OK and *fd, WEFT_EPERM (not the owner's to read, *error EACCES/EPERM),
 * or WEFT_EINVAL with *error (ENODEV: not a regular file). weftd passes the
 * job's principal; a call without an owner may open nothing.
 */
struct job;

struct blocking_owner {
	int (*open_regular)(const void *owner, const char *path, int *fd, int *error);
	const void *owner; /* borrowed: outlives the call */
	struct job *job;   /* the job the call runs for (borrowed, outlives it), or NULL:
	                      weft_yield_item yields its items */
};

/*
 * Performs the call. Runs on a pool thread (or any thread in tests) and
 * blocks. `args` is borrowed and was accepted by the matching check. `owner`
 * (borrowed, may be NULL: then no file may be opened) gives the rights of
 * the job's owner. `work`
 * is the pool item the call runs under, polled for a cancel request between
 * chunks of long work (file.sha256 stops early then), or NULL for none.
 * Returns WEFT_OK with outcome->result set; otherwise outcome->error_type and
 * error_message say how the call failed, outcome->result is NULL, and the
 * return is WEFT_ENOMEM when memory ran out or WEFT_EINVAL for every failure
 * of the call itself (missing file, unknown host, cancelled).
 */
typedef int blocking_run_fn(const json_t *args, const struct blocking_owner *owner,
			    const struct threadpool_work *work, struct blocking_outcome *outcome);

/* One argument, as the `functions` op describes it. */
struct blocking_argument {
	const char *name;
	const char *description;
};

/* One built-in. Everything is static and read-only. */
struct blocking_function {
	const char *name;                          /* "file.sha256" */
	const char *summary;                       /* one line for `weft functions` */
	const struct blocking_argument *arguments; /* ends with a {NULL, NULL} row */
	blocking_check_fn *check;
	blocking_run_fn *run;
};

/* Every blocking built-in, in the order `functions` lists them. */
extern const struct blocking_function blocking_functions[];
extern const size_t blocking_function_count;

/* The built-in called `name`, or NULL. Any thread; the result is static. */
const struct blocking_function *blocking_find(const char *name);

/*
 * The `functions` op's description of one built-in:
 * {"name": ..., "executor": "thread", "summary": ..., "args": {name: description}}.
 * Any thread. Returns a new reference, or NULL when memory ran out.
 */
json_t *blocking_describe(const struct blocking_function *function);

/*
 * A call of a built-in on the thread pool: the glue between a job and
 * threadpool_submit. The caller owns the memory (embed it in the job), calls
 * blocking_call_init, submits &call->work, and in its done (on the pool
 * thread, or on the cancelling thread when work.cancelled is true) reads rv
 * and outcome, then posts the job's completion to its loop. When
 * work.cancelled is true the function never ran: rv is still WEFT_EINTERNAL
 * and outcome empty, as blocking_call_init left them.
 * The caller owns outcome.result once done has been called.
 */
struct blocking_call {
	struct threadpool_work work; /* what the pool sees; done gets &call->work */
	const struct blocking_function *function;
	const json_t *args; /* borrowed: must outlive the call, unmodified */
	const struct blocking_owner *owner; /* borrowed: must outlive the call; may be NULL */
	int rv;             /* the run's return, set before done when it ran */
	struct blocking_outcome outcome;
};

/* Prepares `call` to run `function` on `args` with the rights of `owner`
 * (both borrowed) and then `done`. Any thread. */
void blocking_call_init(struct blocking_call *call, const struct blocking_function *function,
			const json_t *args, const struct blocking_owner *owner,
			void (*done)(struct threadpool_work *work));

/* The call a pool item belongs to; for use in done. */
struct blocking_call *blocking_call_from_work(struct threadpool_work *work);

/* The halves, also reachable through the table. */
blocking_check_fn blocking_sleep_check;
blocking_run_fn blocking_sleep_run;
blocking_check_fn blocking_count_check;
blocking_run_fn blocking_count_run;
blocking_check_fn blocking_file_sha256_check;
blocking_run_fn blocking_file_sha256_run;
blocking_check_fn blocking_dns_resolve_check;
blocking_run_fn blocking_dns_resolve_run;

/* Longest sleep.blocking accepts, in seconds (one year). */
#define BLOCKING_SLEEP_MAX_SECONDS 31536000.0
/* Size of file.sha256's read buffer: the memory a hash uses, whatever the
 * file's size. It lives on the stack, so run bodies belong on threads with
 * ordinary stacks (the pool's), not on small coroutine stacks. */
#define BLOCKING_SHA256_CHUNK (64 * 1024)

#endif
