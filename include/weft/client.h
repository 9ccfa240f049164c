/*
 * libweft: the C client of weftd.
 *
 * A weft_client is one connection (one nng REQ socket) to one daemon. Every
 * call opens its own nng context, so any number of threads may share one
 * client and have calls outstanding at the same time; a long poll in one
 * thread never delays another thread's calls.
 *
 * Conventions of every function here:
 * - It returns WEFT_OK (0) or a weft_error code (include/weft/error.h) and
 *   writes its outputs only on success.
 * - On failure the calling thread's last error (weft_last_error) says why,
 *   with the daemon's message and, when the daemon gave them, the field,
 *   batch index, job id and job state it named.
 * - Blocking: calls that talk to the daemon block the calling thread until
 *   the reply arrives; none of them may be called from a signal handler.
 * - JSON values use jansson. Ownership is stated at each declaration in
 *   jansson's words: "borrowed" (the callee takes no reference of its own
 *   beyond the call, or takes its own with json_incref), "new reference"
 *   (the caller must json_decref it), "stolen" (the callee owns it afterwards,
 *   even on failure).
 * - Out of memory is WEFT_ENOMEM; the library never aborts.
 *
 * The connection: weft_connect dials synchronously and checks the daemon's
 * protocol version with one ping (sent again, up to 3 times, if the new
 * connection is reset before the reply: a ping is safe to repeat). If the
 * connection drops later, nng dials again in the background (every 100 ms to
 * 2 s). A call whose request was already sent when the connection dropped
 * fails with WEFT_ECLOSED: the request is never sent a second time (it may or
 * may not have been carried out; a submit may have created its job, so look
 * before submitting again). A call made while there is no connection waits
 * up to 10 s for one and then fails with WEFT_ECONNECT. A reply is awaited as
 * long as the request asks the daemon to wait (result and wait timeouts, the
 * submit wait) plus 30 s; past that the call fails with WEFT_ETIMEOUT and
 * the message "sent no reply". Replies are read up to 64 MiB; a larger one
 * makes nng drop the connection (WEFT_ECLOSED): page long lists with "limit".
 */
#ifndef WEFT_CLIENT_H
#define WEFT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "weft/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ errors */

/* What went wrong in the calling thread's last failed call. All strings are
 * NUL-terminated and empty when absent; long daemon messages are cut to fit.
 * New fields are only ever appended (the library owns the storage). */
typedef struct weft_error_info {
	int code;            /* a weft_error; WEFT_OK when the last call succeeded */
	char wire_code[32];  /* the daemon's "code" as sent (kept even when this library
	                        does not know it and code is WEFT_EINTERNAL) */
	char message[512];   /* for people: what happened and what to change */
	char field[128];     /* the offending request field, e.g. "jobs[3].fn" */
	long long index;     /* position in a batch, or -1 */
	uint64_t id;         /* the job id the error is about, or 0 */
	char state[16];      /* the job's state, e.g. "running" for a timed-out result */
} weft_error_info;

/* The calling thread's last error. Every weft_ call that can fail resets it
 * to WEFT_OK on entry and fills it when it fails, so read it right after the
 * failing call. Never NULL. Borrowed: thread-local storage owned by the
 * library, valid until the thread's next weft_ call. Any thread. */
const weft_error_info *weft_last_error(void);

/* ------------------------------------------------------------------ memory */

typedef void *(*weft_malloc_fn)(size_t size);
typedef void (*weft_free_fn)(void *pointer);

/* Routes every allocation libweft makes itself through malloc_fn/free_fn
 * (NULL, NULL restores malloc/free). jansson has its own switch,
 * json_set_alloc_funcs; nng allocates with malloc. Call it before any other
 * weft_ call, from one thread: it is not synchronised. */
void weft_set_alloc_funcs(weft_malloc_fn malloc_fn, weft_free_fn free_fn);

/* ------------------------------------------------------------------- jobs */

/* Job states, as the protocol spells them (weft_state_name). */
typedef enum weft_state {
	WEFT_STATE_QUEUED,
	WEFT_STATE_RUNNING,
	WEFT_STATE_DONE,
	WEFT_STATE_FAILED,
	WEFT_STATE_CANCELLED,
	WEFT_STATE_UNKNOWN, /* a state a newer daemon sent that this library does not know */
	WEFT_STATE_PENDING, /* a bare future (future.new) that no client has set yet */
} weft_state;

/* "queued", "running", ...; "unknown" for anything else. Static. Any thread. */
const char *weft_state_name(weft_state state);
/* The state for a name; WEFT_STATE_UNKNOWN when name is NULL or unknown. */
weft_state weft_state_from_name(const char *name);
/* True for done, failed and cancelled. */
bool weft_state_is_finished(weft_state state);

/* The outcome of a job as `result` reports it. Allocated by the library and
 * freed with weft_outcome_free; read-only for the caller. New fields are only
 * ever appended. */
typedef struct weft_outcome {
	uint64_t id;
	weft_state state;
	/* done: the function's result (owned by the outcome: borrow it, or
	 * json_incref it to keep it past weft_outcome_free). NULL otherwise. */
	json_t *result;
	/* failed or cancelled: the error's type ("Timeout", "Cancelled", "ValueError",
	 * ...) and message, owned by the outcome. NULL otherwise. */
	char *error_type;
	char *error_message;
	/* failed or cancelled: what the function adds to its error (an exec job's
	 * result: exit_code, signal, stdout, stderr, ...), owned by the outcome like
	 * result. NULL when there is none. */
	json_t *error_details;
} weft_outcome;

/* Frees an outcome and what it owns. NULL is fine. */
void weft_outcome_free(weft_outcome *outcome);

/* A job to submit: a function name plus options. Opaque so that options can be
 * added without breaking the ABI. One thread at a time per spec; a spec is
 * only read by the submit calls and can be submitted any number of times. */
typedef struct weft_job_spec weft_job_spec;

/* A spec for calling fn (copied) with no arguments, no timeout and no labels.
 * WEFT_EINVAL when fn is NULL or empty. */
int weft_job_spec_new(const char *fn, weft_job_spec **out);
/* Frees the spec and the references it holds. NULL is fine. */
void weft_job_spec_free(weft_job_spec *spec);
/* The function's arguments, a JSON object. Borrowed: the spec takes its own
 * reference (json_incref); NULL clears them (sent as {}). WEFT_EINVAL when args
 * is not an object. */
int weft_job_spec_set_args(weft_job_spec *spec, json_t *args);
/* Seconds the job may run before it is stopped and ends failed with error type
 * "Timeout"; 0 means none (the default). WEFT_EINVAL when negative or not finite. */
int weft_job_spec_set_timeout(weft_job_spec *spec, double seconds);
/* Adds (or replaces) the label key=value; both are copied. */
int weft_job_spec_set_label(weft_job_spec *spec, const char *key, const char *value);

/* ----------------------------------------------------------------- client */

typedef struct weft_client weft_client;

/* Connects to the daemon at url ("ipc:///path/weft.sock", "tcp://host:port").
 * url NULL: $WEFT_URL when set and not empty, else the calling user's daemon
 * socket when it exists, else the system daemon's (ipc:///run/weft/weft.sock).
 * Blocks until connected and one ping has answered.
 * WEFT_ECONNECT: nothing listens there (the message names the URL and why);
 * WEFT_EINVAL: the URL is not understood; WEFT_EPROTO: the daemon speaks
 * another protocol version. *out is the new client; free it with weft_close. */
int weft_connect(const char *url, weft_client **out);

/* Closes the connection and frees the client. Every call on it must have
 * returned first. NULL is fine. */
void weft_close(weft_client *client);

/* The URL the client dialed. Borrowed: valid until weft_close. */
const char *weft_client_url(const weft_client *client);
/* The daemon's --max-message as its ping reported it, in bytes. Requests up
 * to 4 times this are sent (the daemon answers
 * too_large above the limit); larger ones fail locally with WEFT_ETOOLARGE. */
size_t weft_client_max_message(const weft_client *client);

/* ping. *reply (may be NULL): the reply object {"ok", "version", "protocol",
 * "max_message"}; new reference. */
int weft_ping(weft_client *client, json_t **reply);

/* Submits one job; *id is its id. */
int weft_submit(weft_client *client, const weft_job_spec *spec, uint64_t *id);

/* Submits count jobs at once, all accepted or none (then weft_last_error's
 * index names the faulty one). ids: the caller's array of count slots,
 * written on success in the order of specs. count must be at least 1. */
int weft_submit_batch(weft_client *client, const weft_job_spec *const *specs, size_t count,
                      uint64_t *ids);

/* Submits one job and waits up to wait_seconds (finite, >= 0) for it to
 * finish, in one round trip. *outcome: the job's outcome when it finished in time; otherwise
 * an outcome with its id and state queued or running and nothing else (the job
 * goes on; use weft_result). */
int weft_submit_wait(weft_client *client, const weft_job_spec *spec, double wait_seconds,
                     weft_outcome **outcome);

/* The job object (id, fn, state, args, labels, timeout, created, started,
 * finished, worker, error; see the protocol). *job: new reference. */
int weft_status(weft_client *client, uint64_t id, json_t **job);

/* Waits up to timeout seconds for the job to finish (negative or infinity:
 * forever; 0: poll; weftd takes at most 315360000). WEFT_ETIMEOUT when it is still unfinished: weft_last_error's state
 * says its state, and the job is not affected. A failed or cancelled job is
 * WEFT_OK with the failure in *outcome. */
int weft_result(weft_client *client, uint64_t id, double timeout, weft_outcome **outcome);

typedef enum weft_return_when {
	WEFT_ALL_COMPLETED,
	WEFT_FIRST_COMPLETED,
	WEFT_FIRST_EXCEPTION,
} weft_return_when;

/* What weft_wait found; allocated by the library, freed with
 * weft_wait_result_free. Ids are in the order they were asked for. */
typedef struct weft_wait_result {
	uint64_t *done;
	size_t done_count;
	uint64_t *pending;
	size_t pending_count;
} weft_wait_result;

void weft_wait_result_free(weft_wait_result *result);

/* asyncio.wait: returns when the return_when condition holds or after timeout
 * seconds (negative or infinity: no limit), whichever comes first. Running out of time is
 * not an error: the unfinished jobs are in pending. */
int weft_wait(weft_client *client, const uint64_t *ids, size_t count, double timeout,
              weft_return_when return_when, weft_wait_result **result);

/* Cancels a queued or running job. *cancelled (may be NULL): false when it had
 * already finished; *state (may be NULL): its state after the call. */
int weft_cancel(weft_client *client, uint64_t id, bool *cancelled, weft_state *state);

/* Lists jobs in id order. filter (borrowed, may be NULL): an object with any of
 * "state", "fn", "labels", "after", "limit" as the protocol's list op takes
 * them. *jobs: an array of job objects, new reference. *more (may be NULL): true
 * when the limit cut the list (go on with "after" = the last id). */
int weft_list(weft_client *client, const json_t *filter, json_t **jobs, bool *more);

/* The daemon's functions: an array of {"name", "executor", "summary", "args"};
 * new reference. */
int weft_functions(weft_client *client, json_t **functions);

/* The daemon's statistics: the stats reply (uptime, workers, jobs, memory, ...);
 * new reference. */
int weft_stats(weft_client *client, json_t **stats);

/* Sends any request object (borrowed) and gives back the reply object, for
 * tools and for ops this library does not wrap yet. reply_wait: how long the
 * daemon may take to answer on purpose (a result or wait timeout; negative:
 * forever). Returns WEFT_OK whenever a reply object arrived, with ok true or
 * false: *reply is a new reference to it. */
int weft_request(weft_client *client, const json_t *request, double reply_wait, json_t **reply);

/* The same with the request as raw bytes (they need not be JSON), for tools
 * that test the daemon. */
int weft_request_bytes(weft_client *client, const void *bytes, size_t size, double reply_wait,
                       json_t **reply);

#ifdef __cplusplus
}
#endif
#endif
