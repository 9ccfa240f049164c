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
	WEFT_STATE_WAITING, /* for the jobs in "after", a delay or start time, or a retry's pause */
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

/* Scheduling (the protocol's "Scheduling fields"). A job with any of them
 * starts in the state waiting instead of queued. Each setter checks its value
 * here and fails with WEFT_EINVAL and a message saying what to change; the
 * daemon checks the rest (an id in "after" that it does not know is
 * WEFT_EUNKNOWNID at submit). They go into single and batch submits alike. */

/* Runs the job only once job id (1 to 2^53) has finished; call it once per
 * job to wait for (at most 1000; the same id twice counts once). If one of
 * them ends failed or cancelled, the job ends failed with error type
 * "DependencyFailed", unless weft_job_spec_set_after_always says otherwise. */
int weft_job_spec_add_after(weft_job_spec *spec, uint64_t id);
/* true: run the job once the jobs it waits for have finished, whatever their
 * outcome (after_policy "always"); false (the default): only if all are done. */
int weft_job_spec_set_after_always(weft_job_spec *spec, bool always);
/* Holds the job for seconds (0 to 315360000) after it is submitted. Not with
 * weft_job_spec_set_at. */
int weft_job_spec_set_delay(weft_job_spec *spec, double seconds);
/* Holds the job until unix_time (seconds since the epoch, fractions allowed;
 * a past time means at once). Not with weft_job_spec_set_delay. */
int weft_job_spec_set_at(weft_job_spec *spec, double unix_time);
/* Runs the job again, up to count (0 to 100) more times, when an attempt fails.
 * The first pause is first_backoff seconds, doubled after each attempt (with
 * +-25% jitter) up to backoff_max; a negative value leaves that one to the
 * daemon (1 s and 60 s); both at most 315360000. The timeout applies to each
 * attempt; the job object's "attempts" (weft_status) lists them. */
int weft_job_spec_set_retries(weft_job_spec *spec, int count, double first_backoff,
                              double backoff_max);
/* Retries only failures of this error type (1 to 64 bytes, copied; call once
 * per type). Without any, every failure but "Cancelled" and
 * "DependencyFailed" is retried. */
int weft_job_spec_add_retry_on(weft_job_spec *spec, const char *type);
/* Bounds the whole job, waits and retries included, by unix_time: past it
 * the job ends failed with error type "Deadline". */
int weft_job_spec_set_deadline(weft_job_spec *spec, double unix_time);
/* Higher runs first among jobs queued for the same slots (-1000 to 1000;
 * default 0). WEFT_EINVAL out of range. */
int weft_job_spec_set_priority(weft_job_spec *spec, int priority);
/* A generator's buffer: how many unread items the job may yield ahead of its
 * reader before it is paused (1 to 1000000; 0: no count limit, only weftd's
 * byte budget). */
int weft_job_spec_set_buffer(weft_job_spec *spec, unsigned items);
/* The named queue the job runs in (copied; NULL: none). It must exist in the
 * daemon (weft_queue_set), or the submit fails with WEFT_EBADFIELD. */
int weft_job_spec_set_queue(weft_job_spec *spec, const char *queue);

/* ----------------------------------------------------------------- client */

typedef struct weft_client weft_client;

/* Connects to the daemon at url ("ipc:///path/weft.sock", "tcp://host:port").
 * url NULL: $WEFT_URL when set and not empty, else the calling user's daemon
 * socket when it exists, else the system daemon's (ipc:///run/weft/weft.sock).
 * Blocks until connected and one ping has answered.
 * WEFT_ECONNECT: nothing listens there (the message names the URL and why);
 * WEFT_EINVAL: the URL is not understood (or a tls+tcp:// URL without
 * WEFT_TLS_CERT, WEFT_TLS_KEY, WEFT_TLS_CA); WEFT_EPERM: the socket's directory
 * or the socket belongs to another user, or others may write there (see
 * README, Socket); WEFT_EPROTO: the daemon speaks another protocol version. *out is the new client; free it with weft_close. */
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

/* Every call below that takes a client returns WEFT_EINVAL, sending nothing,
 * when client is NULL, and so do those given NULL where they write their
 * answer (unless the comment says "may be NULL"). Outputs are written only
 * on success. */

/* ping. *reply (may be NULL): the reply object {"ok", "version", "protocol",
 * "max_message"}; new reference. */
int weft_ping(weft_client *client, json_t **reply);

/* Submits one job; *id is its id. WEFT_EINVAL when spec or id is NULL. */
int weft_submit(weft_client *client, const weft_job_spec *spec, uint64_t *id);

/* Submits count jobs at once, all accepted or none (then weft_last_error's
 * index names the faulty one). ids: the caller's array of count slots,
 * written on success in the order of specs. count must be at least 1. */
int weft_submit_batch(weft_client *client, const weft_job_spec *const *specs, size_t count,
                      uint64_t *ids);

/* Submits one job and waits up to wait_seconds (finite, >= 0) for it to
 * finish, in one round trip. *outcome: the job's outcome when it finished in time; otherwise
 * an outcome with its id and unfinished state (waiting, queued or running) and
 * nothing else (the job goes on; use weft_result). WEFT_EINVAL when spec is
 * NULL. */
int weft_submit_wait(weft_client *client, const weft_job_spec *spec, double wait_seconds,
                     weft_outcome **outcome);

/* The job object (id, fn, state, args, labels, timeout, created, started,
 * finished, worker, error, and for a scheduled job its scheduling fields,
 * run_at and attempts; see the protocol). *job: new reference. WEFT_EINVAL
 * when id is out of range (1 to 2^53) or job is NULL. */
int weft_status(weft_client *client, uint64_t id, json_t **job);

/* Waits up to timeout seconds for the job to finish (negative or infinity:
 * forever; 0: poll; weftd takes at most 315360000). WEFT_ETIMEOUT when it is still unfinished: weft_last_error's state
 * says its state, and the job is not affected. A failed or cancelled job is
 * WEFT_OK with the failure in *outcome. */
int weft_result(weft_client *client, uint64_t id, double timeout, weft_outcome **outcome);

/* The batch result: waits until every job of ids (1 to 2^53 each; any number
 * of them, the same id twice counts once) has finished or timeout has passed
 * (negative or infinity: no limit), and gives one outcome per distinct id, in
 * the order of first appearance: *outcomes (an array of *outcome_count new
 * outcomes; free with weft_outcomes_free). A job still unfinished has its id
 * and state only (running out of time is not an error here). Ids that do not
 * fit one request of the daemon's max_message (or its 100000 ids) are sent
 * in several requests, one after another, sharing the timeout. */
int weft_result_many(weft_client *client, const uint64_t *ids, size_t count, double timeout,
                     weft_outcome ***outcomes, size_t *outcome_count);

/* Frees what weft_result_many gave. NULL is fine. */
void weft_outcomes_free(weft_outcome **outcomes, size_t count);

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
 * not an error: the unfinished jobs are in pending. WEFT_EINVAL when an id is
 * out of range (1 to 2^53). */
int weft_wait(weft_client *client, const uint64_t *ids, size_t count, double timeout,
              weft_return_when return_when, weft_wait_result **result);

/* Cancels a queued or running job. *cancelled (may be NULL): false when it had
 * already finished; *state (may be NULL): its state after the call. */
int weft_cancel(weft_client *client, uint64_t id, bool *cancelled, weft_state *state);

/* Lists a page of jobs, newest first (or oldest first with "order": "oldest",
 * or when the filter pages on with "after"). filter (borrowed, may be NULL):
 * an object with any of "state", "fn", "labels", "after", "before", "order",
 * "limit" as the protocol's list op takes them. *jobs: an array of job
 * objects, new reference. *more (may be NULL): the list may go on. WEFT_EINVAL
 * when jobs is NULL. */
int weft_list(weft_client *client, const json_t *filter, json_t **jobs, bool *more);

/* weft_list, and *cursor (may be NULL): where the next page starts — put it
 * in the filter as "before" for a newest-first list, "after" for an oldest-
 * first one. A page may be short, even empty, with *more set, when few jobs
 * match: go on from the cursor. */
int weft_list_page(weft_client *client, const json_t *filter, json_t **jobs, bool *more,
                   uint64_t *cursor);

/* The daemon's functions: an array of {"name", "executor", "summary", "args"};
 * new reference. WEFT_EINVAL when functions is NULL. */
int weft_functions(weft_client *client, json_t **functions);

/* The daemon's statistics: the stats reply (uptime, workers, jobs, memory, ...);
 * new reference. */
int weft_stats(weft_client *client, json_t **stats);

/* ---------------------------------------------------------- bare futures */

/* A bare future: a job (fn "future") that runs nothing and stays pending until
 * a client sets it with weft_future_set_result or weft_future_set_error.
 * weft_result, weft_wait and weft_as_completed wait for it like for any job,
 * and weft_cancel cancels it. It counts against the daemon's --max-pending
 * (WEFT_EBUSY). labels: borrowed, may be NULL; an object of strings as for a
 * job (WEFT_EINVAL when not an object). *id: the future's id. */
int weft_future_new(weft_client *client, const json_t *labels, uint64_t *id);

/* Sets the future to done with result (borrowed: the library takes no
 * reference; any JSON value, not NULL). A future is set once:
 * WEFT_EALREADYSET when it is already finished or cancelled (weft_last_error's
 * state says which); WEFT_EPERM when another user made it; WEFT_EUNKNOWNID
 * when no job has that id; WEFT_EBADFIELD when the id is a job, not a future. */
int weft_future_set_result(weft_client *client, uint64_t id, json_t *result);

/* Sets the future to failed with an error: type (1 to 64 bytes, such as
 * "ValueError") and message (may be empty, not NULL); both are copied. Errors
 * as for weft_future_set_result. */
int weft_future_set_error(weft_client *client, uint64_t id, const char *type,
                          const char *message);

/* ------------------------------------------------------------ as_completed */

/* asyncio.as_completed: yields job ids one at a time in the order the jobs
 * finish. Allocated by weft_as_completed_new, freed with
 * weft_as_completed_free; one thread at a time per iterator. It uses the
 * client, which must outlive it. */
typedef struct weft_as_completed weft_as_completed;

/* Starts iterating over count ids (1 to 100000, each 1 to 2^53; the same id
 * twice is yielded once). timeout_total bounds the whole iteration, counted
 * from this call (negative or infinity: no limit; NaN is WEFT_EINVAL). Talks
 * to no daemon yet: an unknown id shows up as WEFT_EUNKNOWNID from the first
 * weft_as_completed_next. */
int weft_as_completed_new(weft_client *client, const uint64_t *ids, size_t count,
                          double timeout_total, weft_as_completed **iterator);

/* The next finished id, waiting for one when none is ready:
 * - WEFT_OK with *id the id of a finished job (each id is yielded once, in
 *   the order the daemon saw them finish; weft_result gives its outcome);
 * - WEFT_OK with *id = 0 when every id has been yielded: the end;
 * - WEFT_ETIMEOUT when timeout_total has passed and no further job has
 *   finished (calling again polls once more);
 * - any error of a call to the daemon (WEFT_ECLOSED, WEFT_EUNKNOWNID, ...):
 *   the iterator is unchanged and may be called again.
 * It asks the daemon's as_completed op with the ids not yet finished, and
 * blocks the calling thread meanwhile. */
int weft_as_completed_next(weft_as_completed *iterator, uint64_t *id);

/* Frees the iterator. NULL is fine. */
void weft_as_completed_free(weft_as_completed *iterator);

/* Named queues (a concurrency limit shared by the jobs that name them with
 * weft_job_spec_set_queue). weft_queue_set makes a queue or changes its max
 * (1 to 1000000); weft_queue_pause stops starting its jobs (paused true) or
 * starts them again (false): WEFT_EBADFIELD for an unknown queue. weft_queues
 * gives [{"name","max","running","queued","paused"}] as a new reference
 * (WEFT_EINVAL when queues is NULL).
 * Any thread. */
int weft_queue_set(weft_client *client, const char *name, unsigned max);
int weft_queue_pause(weft_client *client, const char *name, bool paused);
int weft_queues(weft_client *client, json_t **queues);

/* ------------------------------------------------------------ output */

/* Which of an exec job's streams weft_output_read reads. */
typedef enum weft_stream {
	WEFT_STREAM_STDOUT = 0,
	WEFT_STREAM_STDERR = 1,
	WEFT_STREAM_BOTH = 2, /* both, merged in the order weftd read them */
} weft_stream;

/* One run of bytes of one stream inside a weft_output of WEFT_STREAM_BOTH. */
typedef struct weft_output_run {
	weft_stream stream; /* WEFT_STREAM_STDOUT or WEFT_STREAM_STDERR */
	size_t length;
} weft_output_run;

/* Bytes of an exec job's output (the `output` op); free with weft_output_free. */
typedef struct weft_output {
	unsigned char *data; /* length bytes, exact (NUL bytes included); NULL when 0 */
	size_t length;
	uint64_t offset;     /* where data starts in the stream's numbering */
	uint64_t next;       /* the offset to read from next */
	uint64_t lost;       /* bytes before offset that weftd no longer kept (fell behind) */
	bool eof;            /* the output has ended at next */
	bool started;        /* the job's process has started (false: queued, or never ran) */
	weft_output_run *runs; /* WEFT_STREAM_BOTH: which stream each run of data came from */
	size_t run_count;
} weft_output;

/*
 * Reads an exec job's output from offset (offset < 0: that many bytes before
 * the end), at most max bytes (0: weftd's default), waiting up to wait
 * seconds (0: not at all; at most 300) while there is nothing new and the job
 * has not ended. Returns WEFT_OK with *out (length 0 when the wait ran out),
 * or an error (WEFT_EUNKNOWNID, WEFT_EPERM: another user's job, WEFT_EBADFIELD:
 * not an exec job, ...). Blocking; any thread.
 */
int weft_output_read(weft_client *client, uint64_t id, weft_stream stream, int64_t offset,
                     size_t max, double wait, weft_output **out);
/* NULL is fine. */
void weft_output_free(weft_output *output);

/*
 * Appends bytes to the stdin of a running exec job submitted with
 * "stdin_stream": true (the `input` op). weftd takes as many as fit in the
 * job's buffer (1 MiB; flow control): *accepted says how many, and the
 * caller sends the rest later. eof: no more will come (the command sees the
 * end once the buffer is written; only taken with the last byte). *started is
 * false while the job has not started (nothing taken: send again later);
 * *closed is true when the command's stdin is closed (it exited or closed
 * it), after which nothing more is taken. length must fit one request
 * (weft_client_max_message, in base64). Blocking; any thread.
 */
int weft_input_write(weft_client *client, uint64_t id, const void *data, size_t length, bool eof,
                     size_t *accepted, bool *started, bool *closed);

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
