/*
 * libweft, asynchronous: start a call without blocking, learn of its end
 * through a callback or a completion queue whose readiness is a file
 * descriptor (for poll, epoll, libevent, ...).
 *
 * A call (weft_call) is one operation on the daemon: a request, its reply,
 * and the typed answer decoded from it. Any number may be in flight on one
 * client, from one thread or many. Every start function:
 * - checks its arguments and returns WEFT_EINVAL (or WEFT_ENOMEM,
 *   WEFT_ETOOLARGE, WEFT_ECLOSED when weft_close has begun) without starting
 *   anything: then no completion will ever come, and the calling thread's
 *   weft_last_error says why;
 * - or returns WEFT_OK, and then the call completes exactly once: with its
 *   answer, with an error (the same codes as the blocking call), with
 *   WEFT_ECANCELED after weft_call_cancel, or with WEFT_ECLOSED when
 *   weft_close ends it. *call (may be NULL) is written before the request
 *   goes out, because the completion may come before the start returns.
 *
 * Completion, as the weft_notify given to the start says:
 * - callback: runs on one of nng's threads (never the caller's, even when
 *   the reply was quick). In it you may read and free the call, start other
 *   calls, cancel calls, and push work to your own threads; you must not
 *   block (no blocking weft_ call, no waiting on a lock held across one), and
 *   you must not call weft_close or weft_completion_queue_free. Callbacks of
 *   different calls may run at the same time on different threads.
 * - completion queue: the call is put on the queue, whose fd becomes
 *   readable; the thread that takes it (weft_completion_queue_next) is the
 *   one that handles it. No code of yours runs on nng's threads.
 *
 * Ownership: once complete, the call is yours, with everything it decoded
 * (its reply, outcomes, ids): read them through the weft_call_ accessors,
 * which return borrowed pointers valid until weft_call_free. Free every
 * completed call with weft_call_free, on any thread. Do not free a call
 * before it has completed.
 *
 * weft_close(client) ends every call still outstanding on the client with
 * WEFT_ECLOSED (each one exactly once), waits until every callback of the
 * client has returned, and only then frees the client. Calls delivered to a
 * completion queue stay valid after weft_close; the queue itself is the
 * caller's, and outlives its clients.
 *
 * Memory: libweft keeps one nng context and aio per call that was in flight
 * at once (the peak), reused by later calls and freed by weft_close.
 */
#ifndef WEFT_ASYNC_H
#define WEFT_ASYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "weft/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_call weft_call;
typedef struct weft_completion_queue weft_completion_queue;

/* A completion callback: call has completed (weft_call_error says how) and is
 * now owned by the callback's code, which frees it with weft_call_free (now
 * or later, on any thread). Runs on an nng thread; see above for what it may do. */
typedef void (*weft_call_fn)(weft_call *call, void *user_data);

/* How a call tells of its completion: exactly one of callback and queue is
 * set. user_data is given to the callback and kept in the call
 * (weft_call_user_data). Read only during the start function: it may live
 * on the caller's stack. */
typedef struct weft_notify {
	weft_call_fn callback;
	weft_completion_queue *queue; /* borrowed: must outlive the call */
	void *user_data;
} weft_notify;

/* ------------------------------------------------------ completion queue */

/* A new, empty queue. WEFT_ENOMEM, or WEFT_EINTERNAL when no eventfd can be
 * made (the message says why). Any thread. */
int weft_completion_queue_new(weft_completion_queue **out);

/* Frees the queue and every completed call still on it. No call may still be
 * outstanding towards it (close their clients first, or take every
 * completion). NULL is fine. Not from a callback. */
void weft_completion_queue_free(weft_completion_queue *queue);

/* The queue's file descriptor: readable exactly while at least one completed
 * call is waiting on the queue (level-triggered; never read or write it
 * yourself, and do not close it). Valid until weft_completion_queue_free. */
int weft_completion_queue_fd(const weft_completion_queue *queue);

/* Takes the oldest completed call off the queue without blocking: WEFT_OK
 * with *call the call (now yours: weft_call_free) or NULL when the queue is
 * empty. Any thread; several may take from one queue. WEFT_EINVAL for NULL. */
int weft_completion_queue_next(weft_completion_queue *queue, weft_call **call);

/* The same, waiting up to timeout seconds (negative: forever; 0: no wait)
 * for one: WEFT_ETIMEOUT when none came in time. */
int weft_completion_queue_wait(weft_completion_queue *queue, double timeout, weft_call **call);

/* ------------------------------------------------------------- a call */

/* WEFT_OK when the call succeeded, or its error. 0 (WEFT_OK) too for a call
 * that has not completed yet: read it only once the call has completed. */
int weft_call_error(const weft_call *call);
/* The error in full (message, field, index, id, state), as weft_last_error
 * gives it for blocking calls. Borrowed: valid until weft_call_free. */
const weft_error_info *weft_call_error_info(const weft_call *call);
/* The notify's user_data. */
void *weft_call_user_data(const weft_call *call);

/* Asks an outstanding call to end now: it then completes with
 * WEFT_ECANCELED, exactly once (the callback runs, or the call is queued, on
 * nng's thread as usual; it may have done so before this returns). The
 * daemon may have received the request already and carried it out (a
 * cancelled submit may have made its job; weft_cancel_async cancels a job).
 * Returns WEFT_OK, or WEFT_EALREADYSET when the call had already completed or
 * been cancelled (nothing changes). Any thread, callbacks included, as long as
 * the call has not been freed. */
int weft_call_cancel(weft_call *call);

/* Frees a completed call and all it holds (reply, outcomes, ids). NULL is
 * fine. Any thread. */
void weft_call_free(weft_call *call);

/* The answers; each is valid after a successful completion of the calls
 * named, and NULL/0 otherwise. Borrowed: owned by the call. */

/* The last reply object of the call (every op; for an op the library split
 * into several requests, the last one's). Borrowed; NULL when no reply came. */
json_t *weft_call_reply(const weft_call *call);
/* submit, future_new: the new id. */
uint64_t weft_call_id(const weft_call *call);
/* submit_batch: the new ids, in the order of the specs (*count of them). */
const uint64_t *weft_call_ids(const weft_call *call, size_t *count);
/* submit_wait, result: the outcome. Borrowed. */
const weft_outcome *weft_call_outcome(const weft_call *call);
/* The same, handed over: a new outcome for weft_outcome_free; the call no
 * longer has it. */
weft_outcome *weft_call_take_outcome(weft_call *call);
/* result_many: one outcome per id asked for, in the order asked (*count of
 * them); an unfinished job has its id and state only. Borrowed. */
weft_outcome *const *weft_call_outcomes(const weft_call *call, size_t *count);
/* wait and as_completed: done and pending ids (as_completed: done in the
 * order the jobs finished). Borrowed. */
const weft_wait_result *weft_call_wait_result(const weft_call *call);
/* status: the job object. Borrowed. */
json_t *weft_call_job(const weft_call *call);
/* cancel: whether the job was cancelled and its state after. WEFT_EINVAL for
 * any other call or one that failed. Outputs may be NULL. */
int weft_call_cancel_outcome(const weft_call *call, bool *cancelled, weft_state *state);

/* ------------------------------------------------------------- the ops */

/* Each takes the arguments of its blocking twin in weft/client.h (with the
 * same checks and ownership), then notify (borrowed, read during the call)
 * and call (may be NULL: where to put the call's handle). Any thread,
 * callbacks included. */

int weft_ping_async(weft_client *client, const weft_notify *notify, weft_call **call);
int weft_submit_async(weft_client *client, const weft_job_spec *spec, const weft_notify *notify,
                      weft_call **call);
/* All the specs go in one request when they fit the daemon's max_message,
 * all accepted or none; see weft_submit_batch. */
int weft_submit_batch_async(weft_client *client, const weft_job_spec *const *specs,
                            size_t count, const weft_notify *notify, weft_call **call);
int weft_submit_wait_async(weft_client *client, const weft_job_spec *spec, double wait_seconds,
                           const weft_notify *notify, weft_call **call);
int weft_status_async(weft_client *client, uint64_t id, const weft_notify *notify,
                      weft_call **call);
int weft_result_async(weft_client *client, uint64_t id, double timeout,
                      const weft_notify *notify, weft_call **call);
/* The batch result (see weft_result_many); split into requests that each fit
 * the daemon's max_message, sent one after another on the call. */
int weft_result_many_async(weft_client *client, const uint64_t *ids, size_t count,
                           double timeout, const weft_notify *notify, weft_call **call);
int weft_wait_async(weft_client *client, const uint64_t *ids, size_t count, double timeout,
                    weft_return_when return_when, const weft_notify *notify, weft_call **call);
/* One round of asyncio.as_completed: completes when at least one of ids has
 * finished or timeout has passed (negative: no limit); the result's done lists
 * the finished ids in the order they finished, pending the others. */
int weft_as_completed_async(weft_client *client, const uint64_t *ids, size_t count,
                            double timeout, const weft_notify *notify, weft_call **call);
int weft_cancel_async(weft_client *client, uint64_t id, const weft_notify *notify,
                      weft_call **call);
int weft_future_new_async(weft_client *client, const json_t *labels, const weft_notify *notify,
                          weft_call **call);
int weft_future_set_result_async(weft_client *client, uint64_t id, json_t *result,
                                 const weft_notify *notify, weft_call **call);
int weft_future_set_error_async(weft_client *client, uint64_t id, const char *type,
                                const char *message, const weft_notify *notify,
                                weft_call **call);
/* Any request object (borrowed: encoded before this returns); the reply,
 * whatever its ok, is weft_call_reply. */
int weft_request_async(weft_client *client, const json_t *request, double reply_wait,
                       const weft_notify *notify, weft_call **call);

#ifdef __cplusplus
}
#endif
#endif
