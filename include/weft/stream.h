/*
 * libweft: streams from weftd -- the items a job yields (an iterator over
 * `next`) and the event feed (`events`). Conventions as in weft/client.h:
 * functions return WEFT_OK or a weft_error and set the thread's last error;
 * outputs are written on success only; JSON ownership is stated at each one.
 *
 * An iterator or an event reader belongs to one thread at a time (it keeps
 * its position); the client under it may be shared.
 */
#ifndef WEFT_STREAM_H
#define WEFT_STREAM_H

#include <stdint.h>

#include <jansson.h>

#include "weft/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- iterators */

/* Reads one job's items in order, from the first, fetching up to 256 per
 * request. Reading drops them in the daemon: one reader per job. */
typedef struct weft_iter weft_iter;

/* Opens an iterator over job id's items. client: borrowed, must outlive it.
 * *iter: free with weft_iter_close. Sends nothing yet. */
int weft_iter_open(weft_client *client, uint64_t id, weft_iter **iter);

/*
 * The next item, waiting for it at most timeout seconds (negative: no
 * limit). Returns WEFT_OK with *item a new reference; or WEFT_OK with *item
 * NULL once the job has finished and every item was read (then
 * weft_iter_outcome tells how it ended: a failed job's error comes after its
 * last item); WEFT_ETIMEOUT when no item came in time (call again);
 * WEFT_EITEMGONE when another reader took items of this job; or the errors
 * of a request (unknown_id, permission_denied, ...).
 */
int weft_iter_next(weft_iter *iter, double timeout, json_t **item);

/* After the end: the job's outcome (borrowed, owned by the iterator); NULL before. */
const weft_outcome *weft_iter_outcome(const weft_iter *iter);

/* How many items were read so far. */
uint64_t weft_iter_count(const weft_iter *iter);

void weft_iter_close(weft_iter *iter);

/* ---------------------------------------------------------------- events */

/* Reads the event feed: job state changes and queue changes (PROTOCOL.md,
 * "events"), those the caller may see. */
typedef struct weft_events weft_events;

/*
 * Opens a reader. after: a cursor from an earlier reader (copied), or NULL
 * for the oldest event weftd holds. filter: borrowed, copied; NULL, or
 * {"ids": [...], "fn": "...", "type": "job"|"queue"}. Sends nothing yet.
 */
int weft_events_open(weft_client *client, const char *after, const json_t *filter,
                     weft_events **events);

/*
 * The next event, waiting at most timeout seconds (0: do not wait; negative:
 * no limit). Returns WEFT_OK with *event a new reference; WEFT_ETIMEOUT when
 * none came; WEFT_ECURSOREXPIRED when events were lost (the reader fell
 * behind the daemon's ring, or weftd restarted): the reader has moved on to
 * the oldest event held, so resync (weft_list) and call again.
 */
int weft_events_next(weft_events *events, double timeout, json_t **event);

/* The cursor after the last event returned (borrowed, valid until the next
 * call), or NULL before the first reply: keep it to read on later. */
const char *weft_events_cursor(const weft_events *events);

void weft_events_close(weft_events *events);

#ifdef __cplusplus
}
#endif
#endif
