/*
 * Bare futures (future.new, future.set) and the as_completed iterator
 * (weft/client.h). The iterator keeps every id it was given with a flag
 * saying whether it was yielded, and asks the daemon about the others only,
 * so that an id is never yielded twice whatever the daemon's replies say.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/allocator.h"
#include "client/connection.h"
#include "client/job_spec.h"
#include "client/last_error.h"

/* How many ids one as_completed request may carry. */
#define FUTURES_MAX_IDS 100000
/* The longest timeout weftd takes (ten years). */
#define FUTURES_MAX_SECONDS 315360000.0

/* ------------------------------------------------------------ as_completed */

/* One id being iterated over: `position` is its place in the caller's order. */
typedef struct as_completed_entry {
	uint64_t id;
	size_t position;
} as_completed_entry;

struct weft_as_completed {
	weft_client *client; /* borrowed */
	size_t count;        /* distinct ids */
	uint64_t *ids;       /* owned: the distinct ids in the caller's order */
	bool *yielded;       /* owned: per position, yielded or waiting to be (in ready) */
	as_completed_entry *by_id; /* owned: the ids sorted, to find a position */
	size_t unfinished;   /* ids the daemon has not reported finished */
	uint64_t *ready;     /* owned, room for count: finished ids not yet handed out */
	size_t ready_next;
	size_t ready_count;
	bool forever;
	double deadline; /* on the monotonic clock, unless forever */
};

static double monotonic_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static int compare_entries(const void *left, const void *right)
{
	uint64_t a = ((const as_completed_entry *)left)->id;
	uint64_t b = ((const as_completed_entry *)right)->id;
	return (a > b) - (a < b);
}

/* By id, then by position: among equal ids the caller's first comes first. */
static int compare_entries_stable(const void *left, const void *right)
{
	int by_id = compare_entries(left, right);
	if (by_id != 0)
		return by_id;
	size_t a = ((const as_completed_entry *)left)->position;
	size_t b = ((const as_completed_entry *)right)->position;
	return (a > b) - (a < b);
}

/* The position of id, or NULL when it is not one of the iterator's. */
static const as_completed_entry *find_entry(const weft_as_completed *iterator, uint64_t id)
{
	as_completed_entry key = {.id = id};
	return bsearch(&key, iterator->by_id, iterator->count, sizeof(key), compare_entries);
}

void weft_as_completed_free(weft_as_completed *iterator)
{
	if (iterator == NULL)
		return;
	allocator_free(iterator->ready);
	allocator_free(iterator->by_id);
	allocator_free(iterator->yielded);
	allocator_free(iterator->ids);
	allocator_free(iterator);
}

int weft_as_completed_new(weft_client *client, const uint64_t *ids, size_t count,
                          double timeout_total, weft_as_completed **iterator)
{
	last_error_clear();
	int rv;
	if (client == NULL)
		return last_error_set(WEFT_EINVAL, "as_completed needs a client");
	if (count == 0 || ids == NULL)
		return last_error_set(WEFT_EINVAL, "as_completed needs at least one job id");
	if (count > FUTURES_MAX_IDS)
		return last_error_set(WEFT_EINVAL, "as_completed takes at most %d ids, not %zu",
		                      FUTURES_MAX_IDS, count);
	if (isnan(timeout_total))
		return last_error_set(WEFT_EINVAL, "the timeout must be a number of seconds, not NaN");
	for (size_t i = 0; i < count; i++)
		if ((rv = connection_check_id(ids[i])) != 0)
			return rv;
	weft_as_completed *made = allocator_calloc(1, sizeof(*made));
	if (made == NULL)
		goto fail_memory;
	made->client = client;
	if ((made->ids = allocator_calloc(count, sizeof(*made->ids))) == NULL ||
	    (made->yielded = allocator_calloc(count, sizeof(*made->yielded))) == NULL ||
	    (made->by_id = allocator_calloc(count, sizeof(*made->by_id))) == NULL ||
	    (made->ready = allocator_calloc(count, sizeof(*made->ready))) == NULL)
		goto fail_made;
	/* Sort to find duplicates, then keep the first of each in the caller's order. */
	for (size_t i = 0; i < count; i++)
		made->by_id[i] = (as_completed_entry){.id = ids[i], .position = i};
	qsort(made->by_id, count, sizeof(*made->by_id), compare_entries_stable);
	bool *first = made->yielded; /* borrowed as scratch: cleared below */
	for (size_t i = 0; i < count; i++)
		first[made->by_id[i].position] = i == 0 || made->by_id[i].id != made->by_id[i - 1].id;
	size_t distinct = 0;
	for (size_t i = 0; i < count; i++)
		if (first[i])
			made->ids[distinct++] = ids[i];
	memset(made->yielded, 0, count * sizeof(*made->yielded));
	for (size_t i = 0; i < distinct; i++)
		made->by_id[i] = (as_completed_entry){.id = made->ids[i], .position = i};
	qsort(made->by_id, distinct, sizeof(*made->by_id), compare_entries);
	made->count = distinct;
	made->unfinished = distinct;
	made->forever = timeout_total < 0 || isinf(timeout_total);
	if (!made->forever)
		made->deadline = monotonic_now() + timeout_total;
	*iterator = made;
	return WEFT_OK;

fail_made:
	weft_as_completed_free(made);
fail_memory:
	return last_error_set(WEFT_ENOMEM, "out of memory starting as_completed");
}

/* {"op": "as_completed", "ids": <the unfinished ids>, "timeout": seconds
 * (left out when negative)}; new reference, or NULL when out of memory. */
static json_t *as_completed_request(const weft_as_completed *iterator, double seconds)
{
	json_t *id_array = json_array();
	json_t *request = json_pack("{s:s, s:o}", "op", "as_completed", "ids", id_array);
	if (request == NULL)
		return NULL;
	for (size_t i = 0; i < iterator->count; i++) {
		if (iterator->yielded[i])
			continue;
		if (json_array_append_new(id_array, json_integer((json_int_t)iterator->ids[i])) != 0)
			goto fail;
	}
	if (seconds >= 0 && json_object_set_new(request, "timeout", json_real(seconds)) != 0)
		goto fail;
	return request;

fail:
	json_decref(request);
	return NULL;
}

/* Moves the finished ids of a reply (borrowed) to the ready list, in the
 * order given, skipping any the iterator does not wait for. The reply is
 * checked whole first, so that a bad one changes nothing. */
static int take_finished(weft_as_completed *iterator, const json_t *reply)
{
	json_t *done = json_object_get(reply, "done");
	if (!json_is_array(done))
		return connection_bad_reply("as_completed", "the done list");
	size_t index;
	json_t *value;
	json_array_foreach(done, index, value) {
		uint64_t id;
		if (!connection_read_id(value, &id))
			return last_error_set(WEFT_EPROTO, "weftd's reply to 'as_completed' has an "
			                                   "invalid id");
	}
	iterator->ready_next = 0;
	iterator->ready_count = 0;
	json_array_foreach(done, index, value) {
		uint64_t id = (uint64_t)json_integer_value(value);
		const as_completed_entry *entry = find_entry(iterator, id);
		if (entry == NULL || iterator->yielded[entry->position])
			continue;
		iterator->yielded[entry->position] = true;
		iterator->unfinished--;
		iterator->ready[iterator->ready_count++] = id;
	}
	return WEFT_OK;
}

int weft_as_completed_next(weft_as_completed *iterator, uint64_t *id)
{
	last_error_clear();
	if (iterator == NULL || id == NULL)
		return last_error_set(WEFT_EINVAL, "as_completed_next needs an iterator and an id");
	for (;;) {
		if (iterator->ready_next < iterator->ready_count) {
			*id = iterator->ready[iterator->ready_next++];
			return WEFT_OK;
		}
		if (iterator->unfinished == 0) {
			*id = 0;
			return WEFT_OK;
		}
		double seconds = -1;
		if (!iterator->forever) {
			seconds = iterator->deadline - monotonic_now();
			if (seconds < 0)
				seconds = 0; /* past the end: one last look, without waiting */
			if (seconds > FUTURES_MAX_SECONDS)
				seconds = FUTURES_MAX_SECONDS;
		}
		json_t *reply = NULL;
		int rv = connection_op(iterator->client, as_completed_request(iterator, seconds),
		                       seconds, &reply);
		if (rv != 0)
			return rv;
		rv = take_finished(iterator, reply);
		json_decref(reply);
		if (rv != 0)
			return rv;
		if (iterator->ready_count == 0 && !iterator->forever &&
		    monotonic_now() >= iterator->deadline)
			return last_error_set(WEFT_ETIMEOUT,
			                      "%zu job(s) still unfinished when as_completed's time "
			                      "ran out",
			                      iterator->unfinished);
	}
}
