/*
 * Iterators over a job's items and readers of the event feed: weft/stream.h.
 * Both are pull loops over long polls (`next`, `events`) on the caller's
 * thread, with a local batch so that most calls send nothing.
 */
#include <math.h>
#include <string.h>

#include "client/allocator.h"
#include "client/last_error.h"
#include "client/ops.h"
#include "weft/stream.h"

/* Items fetched per `next`; events per `events`. */
#define ITER_BATCH 256
#define EVENTS_BATCH 1000

/* Sends request (stolen) and returns its reply (*reply, new reference) when
 * ok is true; otherwise the daemon's error as the last error. */
static int exchange(weft_client *client, json_t *request, double wait, json_t **reply)
{
	if (request == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory");
	json_t *answer = NULL;
	int rv = weft_request(client, request, wait, &answer);
	json_decref(request);
	if (rv != WEFT_OK)
		return rv;
	if (!json_is_true(json_object_get(answer, "ok"))) {
		rv = last_error_set_from_reply(answer);
		json_decref(answer);
		return rv;
	}
	*reply = answer;
	return WEFT_OK;
}

/* ---------------------------------------------------------------- items */

struct weft_iter {
	weft_client *client;
	uint64_t id;
	uint64_t index;     /* of the next item to hand out */
	json_t *batch;      /* items fetched, not handed out yet (owned), or NULL */
	size_t batch_next;
	weft_outcome *outcome; /* once the end was read */
};

int weft_iter_open(weft_client *client, uint64_t id, weft_iter **iter)
{
	last_error_clear();
	if (client == NULL || iter == NULL || id == 0)
		return last_error_set(WEFT_EINVAL, "weft_iter_open needs a client, a job id and "
		                                   "somewhere to put the iterator");
	weft_iter *made = allocator_calloc(1, sizeof(*made));
	if (made == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory");
	made->client = client;
	made->id = id;
	*iter = made;
	return WEFT_OK;
}

int weft_iter_next(weft_iter *iter, double timeout, json_t **item)
{
	last_error_clear();
	if (iter == NULL || item == NULL)
		return last_error_set(WEFT_EINVAL, "weft_iter_next needs an iterator and somewhere "
		                                   "to put the item");
	if (iter->outcome != NULL) {
		*item = NULL;
		return WEFT_OK;
	}
	if (iter->batch == NULL || iter->batch_next >= json_array_size(iter->batch)) {
		json_decref(iter->batch);
		iter->batch = NULL;
		json_t *request = json_pack("{s:s, s:I, s:I, s:i}", "op", "next", "id",
		                            (json_int_t)iter->id, "index", (json_int_t)iter->index,
		                            "max", ITER_BATCH);
		if (request != NULL && timeout >= 0)
			json_object_set_new(request, "wait", json_real(timeout));
		json_t *reply = NULL;
		int rv = exchange(iter->client, request, timeout, &reply);
		if (rv != WEFT_OK)
			return rv;
		if (json_is_true(json_object_get(reply, "done"))) {
			weft_outcome *outcome = NULL;
			rv = ops_outcome_from_reply(reply, "next", &outcome);
			json_decref(reply);
			if (rv != WEFT_OK)
				return rv;
			iter->outcome = outcome;
			*item = NULL;
			return WEFT_OK;
		}
		json_t *items = json_object_get(reply, "items");
		if (!json_is_array(items) || json_array_size(items) == 0) {
			json_decref(reply);
			return last_error_set(WEFT_EPROTO, "next: the reply has no items");
		}
		iter->batch = json_incref(items);
		iter->batch_next = 0;
		json_decref(reply);
	}
	*item = json_incref(json_array_get(iter->batch, iter->batch_next++));
	iter->index++;
	return WEFT_OK;
}

const weft_outcome *weft_iter_outcome(const weft_iter *iter)
{
	return iter != NULL ? iter->outcome : NULL;
}

uint64_t weft_iter_count(const weft_iter *iter)
{
	return iter != NULL ? iter->index : 0;
}

void weft_iter_close(weft_iter *iter)
{
	if (iter == NULL)
		return;
	json_decref(iter->batch);
	weft_outcome_free(iter->outcome);
	allocator_free(iter);
}

/* --------------------------------------------------------------- events */

struct weft_events {
	weft_client *client;
	char *cursor;   /* owned; NULL: from the oldest */
	json_t *filter; /* owned copy, or NULL */
	json_t *batch;
	size_t batch_next;
};

int weft_events_open(weft_client *client, const char *after, const json_t *filter,
                     weft_events **events)
{
	last_error_clear();
	if (client == NULL || events == NULL || (filter != NULL && !json_is_object(filter)))
		return last_error_set(WEFT_EINVAL, "weft_events_open needs a client, a filter "
		                                   "object or NULL, and somewhere to put the reader");
	weft_events *made = allocator_calloc(1, sizeof(*made));
	if (made == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory");
	made->client = client;
	if ((after != NULL && (made->cursor = allocator_strdup(after)) == NULL) ||
	    (filter != NULL && (made->filter = json_deep_copy(filter)) == NULL)) {
		allocator_free(made->cursor);
		allocator_free(made);
		return last_error_set(WEFT_ENOMEM, "out of memory");
	}
	*events = made;
	return WEFT_OK;
}

static int set_cursor(weft_events *events, const json_t *value)
{
	if (!json_is_string(value))
		return last_error_set(WEFT_EPROTO, "events: the reply has no cursor");
	char *copy = allocator_strdup(json_string_value(value));
	if (copy == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory");
	allocator_free(events->cursor);
	events->cursor = copy;
	return WEFT_OK;
}

int weft_events_next(weft_events *events, double timeout, json_t **event)
{
	last_error_clear();
	if (events == NULL || event == NULL)
		return last_error_set(WEFT_EINVAL, "weft_events_next needs a reader and somewhere to "
		                                   "put the event");
	while (events->batch == NULL || events->batch_next >= json_array_size(events->batch)) {
		json_decref(events->batch);
		events->batch = NULL;
		json_t *request = json_pack("{s:s, s:i}", "op", "events", "limit", EVENTS_BATCH);
		if (request != NULL && events->cursor != NULL)
			json_object_set_new(request, "after", json_string(events->cursor));
		if (request != NULL && events->filter != NULL)
			json_object_set(request, "filter", events->filter);
		if (request != NULL)
			json_object_set_new(request, "wait", json_real(timeout < 0 ? 1e9 : timeout));
		json_t *answer = NULL;
		if (request == NULL)
			return last_error_set(WEFT_ENOMEM, "out of memory");
		int rv = weft_request(events->client, request, timeout, &answer);
		json_decref(request);
		if (rv != WEFT_OK)
			return rv;
		if (!json_is_true(json_object_get(answer, "ok"))) {
			rv = last_error_set_from_reply(answer);
			/* Move on to the oldest held, so that the next call goes on. */
			if (rv == WEFT_ECURSOREXPIRED)
				(void)set_cursor(events, json_object_get(answer, "oldest"));
			json_decref(answer);
			return rv;
		}
		rv = set_cursor(events, json_object_get(answer, "cursor"));
		json_t *list = json_object_get(answer, "events");
		if (rv == WEFT_OK && !json_is_array(list))
			rv = last_error_set(WEFT_EPROTO, "events: the reply has no events");
		if (rv != WEFT_OK) {
			json_decref(answer);
			return rv;
		}
		bool empty = json_array_size(list) == 0;
		if (!empty) {
			events->batch = json_incref(list);
			events->batch_next = 0;
		}
		json_decref(answer);
		/* A reply without events is the end of the wait: none came. */
		if (empty)
			return last_error_set(WEFT_ETIMEOUT, "no event came within %g s", timeout);
	}
	*event = json_incref(json_array_get(events->batch, events->batch_next++));
	return WEFT_OK;
}

const char *weft_events_cursor(const weft_events *events)
{
	if (events == NULL)
		return NULL;
	/* Inside a batch: the last event handed out; after it, how far the
	 * daemon looked (past events the reader may not see). */
	if (events->batch != NULL && events->batch_next < json_array_size(events->batch))
		return json_string_value(
			json_object_get(json_array_get(events->batch, events->batch_next - 1), "cursor"));
	return events->cursor;
}

void weft_events_close(weft_events *events)
{
	if (events == NULL)
		return;
	json_decref(events->batch);
	json_decref(events->filter);
	allocator_free(events->cursor);
	allocator_free(events);
}
