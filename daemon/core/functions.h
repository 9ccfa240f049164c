/*
 * The functions a job can call, by name: the function type and the registry.
 * The registry knows no executor: each executor module offers its functions,
 * and the composition root (daemon.c) registers them at start.
 *
 * A function has three parts:
 *  - check: validates the arguments when the job is submitted, on the thread
 *    that received the request, so a bad job is refused before it is accepted;
 *  - start: begins one attempt at the job (jobs.h, struct job_attempt), on
 *    the thread given by its executor (the attempt's worker loop, or for
 *    "inline" functions the receiving thread itself). It must end the attempt
 *    exactly once through runner_complete/runner_fail, at once or later from
 *    attempt->worker's thread, unless the runner stops it first. Its state
 *    goes in attempt->data; whatever comes back later (a pool call, a task's
 *    end) is posted to attempt->worker and holds the attempt
 *    (runner_attempt_hold) until it is back, so a retry waits for it;
 *  - stop: the attempt was ended from outside (cancelled, timed out): release
 *    whatever start took (timers, processes). Runs on attempt->worker's thread.
 */
#ifndef FUNCTIONS_H
#define FUNCTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct job;
struct job_attempt;
struct problem;
struct slots;

/* Where a function runs. */
enum function_executor {
	FUNCTION_INLINE,  /* at once, on the thread that received the submit */
	FUNCTION_LOOP,    /* on a worker loop, never blocking it */
	FUNCTION_THREAD,  /* on the thread pool (blocking calls); completes on a worker loop */
	FUNCTION_PROCESS, /* a process of the process pool, watched by a worker loop */
	FUNCTION_TASK,    /* a stackful coroutine task of the runtime, free to move between workers */
};

struct function_argument {
	const char *name;
	const char *description; /* type, whether required, meaning */
};

struct function {
	const char *name;
	enum function_executor executor;
	const char *summary;
	const struct function_argument *arguments; /* terminated by a NULL name */
	/* Returns WEFT_OK, or WEFT_EBADARGS with the problem filled ("args.seconds"). */
	int (*check)(const struct function *function, const json_t *args, struct problem *problem);
	void (*start)(struct job_attempt *attempt);
	void (*stop)(struct job_attempt *attempt); /* NULL when start always ends the attempt at once */
	/*
	 * Optional. A gate of slots (--procs): the job stays queued until it holds
	 * one. The runner gives the slot back when the function completes or
	 * fails; after stop, the function gives it back itself
	 * (runner_release_slot) once what it started is really gone.
	 */
	struct slots *(*gate)(void);
	/*
	 * Optional. The attempt's timeout expired: wind down and end it with
	 * runner_fail(attempt, "Timeout", ...) when done (an exec job keeps the
	 * output it made). Without it the runner ends the attempt at once and
	 * calls stop. The attempt's worker thread.
	 */
	void (*terminate)(struct job_attempt *attempt);
	/* What an executor module needs to run it (the blocking built-in of a
	 * thread function); NULL for the others. */
	const void *implementation;
	/* Optional. false: `functions` does not list it (debug.stall without
	 * --test-hooks); its check still runs and refuses it with a reason. */
	bool (*listed)(void);
};

/* The most functions the registry holds. */
#define FUNCTIONS_MAX 128

/*
 * Adds a function to the registry; `functions` lists them in this order.
 * function: static (borrowed for good). Main thread, before any request is
 * received (the registry is read without locks afterwards). Returns WEFT_OK,
 * or WEFT_EINTERNAL when the name is taken or the registry is full.
 */
int functions_register(const struct function *function);
/* Empties the registry (tests that register their own). Main thread. */
void functions_clear(void);

/* Refuses an argument name the function does not list, so a misspelt one never
 * passes silently: WEFT_OK, or WEFT_EBADARGS with the problem filled. Any thread. */
int functions_check_known_arguments(const struct function *function, const json_t *args,
                                    struct problem *problem);

/* The function of bare futures (future.new): it never runs, a client sets the
 * job's outcome. Not in the registry, so `submit` cannot name it. */
extern const struct function functions_future;

/* The function with that name, or NULL. Any thread, once registration is over. */
const struct function *functions_find(const char *name);

/* The name of a function; "" for NULL. */
const char *functions_name_of(const struct function *function);

/* The wire name of an executor ("inline", "loop"). */
const char *functions_executor_name(enum function_executor executor);

/* Every function as the `functions` op lists them: a new reference. */
json_t *functions_to_json(void);

/* The names of every function, comma separated, into buf (for error messages). */
void functions_names(char *buf, size_t size);

#endif
