/*
 * The typed ops (weft/client.h, weft/async.h): for each, one argument check,
 * one request builder and one reply decoder, used by its asynchronous start
 * and by its blocking twin, which starts the same call and waits for it. A
 * reply that says ok but lacks what the protocol promises is WEFT_EPROTO.
 *
 * The batch result (result_many) is the one op sent in parts: its ids (made
 * distinct, in the order of first appearance, as the daemon counts them)
 * go out in requests that each fit the daemon's max_message, one after
 * another on the same call, each with what is left of the timeout.
 */
#include "client/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client/allocator.h"
#include "client/connection.h"
#include "client/job_spec.h"
#include "client/last_error.h"

/* The daemon takes at most this many ids in one request. */
#define OPS_MAX_IDS 100000
/* An id takes at most 16 digits and a comma; the rest of a result request
 * ({"op":"result","ids":[],"timeout":...}) fits in the slack. */
#define OPS_ID_BYTES 17
#define OPS_REQUEST_SLACK 128
#define OPS_MAX_TYPE_BYTES 64

/* --------------------------------------------------------------- helpers */

/* Checks a timeout given in seconds: negative or infinite means forever (the
 * field is left out of the request), NaN is WEFT_EINVAL. */
static int check_wait(double seconds, const char *what)
{
	if (isnan(seconds))
		return last_error_set(WEFT_EINVAL, "%s must be a number of seconds, not NaN", what);
	return WEFT_OK;
}

static bool waits_forever(double seconds)
{
	return seconds < 0 || isinf(seconds);
}

/* Adds "key": seconds to request unless seconds means forever. */
static int add_seconds(json_t *request, const char *key, double seconds)
{
	if (waits_forever(seconds))
		return 0;
	return json_object_set_new(request, key, json_real(seconds));
}

int ops_outcome_from_reply(const json_t *reply, const char *op, weft_outcome **out)
{
	weft_outcome *outcome = allocator_calloc(1, sizeof(*outcome));
	if (outcome == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory reading a job's outcome");
	int rv;
	if (!connection_read_id(json_object_get(reply, "id"), &outcome->id)) {
		rv = connection_bad_reply(op, "the job's id");
		goto fail;
	}
	const char *state = json_string_value(json_object_get(reply, "state"));
	if (state == NULL) {
		rv = connection_bad_reply(op, "the job's state");
		goto fail;
	}
	outcome->state = weft_state_from_name(state);
	if (outcome->state == WEFT_STATE_DONE) {
		json_t *result = json_object_get(reply, "result");
		outcome->result = result != NULL ? json_incref(result) : json_null();
	} else if (outcome->state == WEFT_STATE_FAILED || outcome->state == WEFT_STATE_CANCELLED) {
		json_t *error = json_object_get(reply, "error");
		const char *type = json_string_value(json_object_get(error, "type"));
		const char *message = json_string_value(json_object_get(error, "message"));
		outcome->error_type = allocator_strdup(type != NULL ? type : "Error");
		outcome->error_message = allocator_strdup(message != NULL ? message : "");
		json_t *details = json_object_get(error, "details");
		outcome->error_details = details != NULL ? json_incref(details) : NULL;
		if (outcome->error_type == NULL || outcome->error_message == NULL) {
			rv = last_error_set(WEFT_ENOMEM, "out of memory reading a job's outcome");
			goto fail;
		}
	}
	*out = outcome;
	return WEFT_OK;

fail:
	weft_outcome_free(outcome);
	return rv;
}

/* Copies an array of ids (borrowed) into a new C array; *ids stays NULL when
 * the array is empty. */
static int read_id_array(const json_t *array, const char *op, uint64_t **ids, size_t *count)
{
	if (!json_is_array(array))
		return connection_bad_reply(op, "the done and pending lists");
	size_t size = json_array_size(array);
	uint64_t *copy = NULL;
	if (size > 0 && (copy = allocator_calloc(size, sizeof(*copy))) == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory reading a %s reply", op);
	for (size_t i = 0; i < size; i++) {
		if (!connection_read_id(json_array_get(array, i), &copy[i])) {
			allocator_free(copy);
			return connection_bad_reply(op, "valid ids");
		}
	}
	*ids = copy;
	*count = size;
	return WEFT_OK;
}

/* A JSON array of ids[0..count) (new reference), or NULL when out of memory. */
static json_t *id_array(const uint64_t *ids, size_t count)
{
	json_t *array = json_array();
	if (array == NULL)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		if (json_array_append_new(array, json_integer((json_int_t)ids[i])) != 0) {
			json_decref(array);
			return NULL;
		}
	}
	return array;
}

/* Checks ids[0..count) (1 to OPS_MAX_IDS of them unless many, each valid). */
static int check_ids(const uint64_t *ids, size_t count, const char *op, bool many)
{
	if (count == 0 || ids == NULL)
		return last_error_set(WEFT_EINVAL, "%s needs at least one job id", op);
	if (!many && count > OPS_MAX_IDS)
		return last_error_set(WEFT_EINVAL, "%s takes at most %d ids", op, OPS_MAX_IDS);
	int rv;
	for (size_t i = 0; i < count; i++)
		if ((rv = connection_check_id(ids[i])) != 0)
			return rv;
	return WEFT_OK;
}

/* Makes a call of op, sets its request (stolen) and starts it. */
static int start(weft_client *client, const struct async_op *op, json_t *request,
                 double reply_wait, const weft_notify *notify, weft_call **handle)
{
	weft_call *call = NULL;
	int rv = async_call_new(client, op, notify, &call);
	if (rv != WEFT_OK) {
		json_decref(request);
		return rv;
	}
	if ((rv = async_call_set_request_json(call, request, reply_wait)) != WEFT_OK) {
		weft_call_free(call);
		return rv;
	}
	return async_call_start(call, handle);
}

int ops_wait(int rv, weft_call *const *call)
{
	if (rv != WEFT_OK)
		return rv;
	return async_call_wait(*call);
}

/* A public start: checks notify, then runs the op's own start. */
#define OPS_CHECK_NOTIFY(notify)                                                           \
	do {                                                                               \
		last_error_clear();                                                        \
		int notify_rv_ = async_check_notify(notify);                               \
		if (notify_rv_ != WEFT_OK)                                                 \
			return notify_rv_;                                                 \
	} while (0)

/* ------------------------------------------------------------------ ping */

static const struct async_op ping_op = {.name = "ping"};

static int ping_start(weft_client *client, const weft_notify *notify, weft_call **call)
{
	return start(client, &ping_op, json_pack("{s:s}", "op", "ping"), 0, notify, call);
}

int weft_ping_async(weft_client *client, const weft_notify *notify, weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return ping_start(client, notify, call);
}

int weft_ping(weft_client *client, json_t **reply)
{
	last_error_clear();
	weft_call *call = NULL;
	int rv = ops_wait(ping_start(client, NULL, &call), &call);
	if (rv == WEFT_OK && reply != NULL) {
		*reply = call->reply;
		call->reply = NULL;
	}
	weft_call_free(call);
	return rv;
}

/* ---------------------------------------------------------------- submit */

/* {"op": "submit", <the spec's fields>}; new reference, or NULL (last error set). */
static json_t *submit_request(const weft_job_spec *spec)
{
	json_t *request = NULL;
	if (job_spec_to_json(spec, &request) != 0)
		return NULL;
	if (json_object_set_new(request, "op", json_string("submit")) != 0) {
		json_decref(request);
		last_error_set(WEFT_ENOMEM, "out of memory building a request");
		return NULL;
	}
	return request;
}

static int submit_decode(weft_call *call, const json_t *reply)
{
	if (!connection_read_id(json_object_get(reply, "id"), &call->id))
		return connection_bad_reply("submit", "the new job's id");
	return WEFT_OK;
}

static const struct async_op submit_op = {.name = "submit", .decode = submit_decode};

static int submit_start(weft_client *client, const weft_job_spec *spec,
                        const weft_notify *notify, weft_call **call)
{
	if (spec == NULL)
		return last_error_set(WEFT_EINVAL, "no job spec given (NULL); make one with "
		                                   "weft_job_spec_new");
	json_t *request = submit_request(spec);
	if (request == NULL)
		return weft_last_error()->code;
	return start(client, &submit_op, request, 0, notify, call);
}

int weft_submit_async(weft_client *client, const weft_job_spec *spec, const weft_notify *notify,
                      weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return submit_start(client, spec, notify, call);
}

int weft_submit(weft_client *client, const weft_job_spec *spec, uint64_t *id)
{
	last_error_clear();
	if (id == NULL && spec != NULL)
		return last_error_set(WEFT_EINVAL, "weft_submit needs somewhere to put the new job's "
		                                   "id (id is NULL)");
	weft_call *call = NULL;
	int rv = ops_wait(submit_start(client, spec, NULL, &call), &call);
	if (rv == WEFT_OK)
		*id = call->id;
	weft_call_free(call);
	return rv;
}

static int batch_decode(weft_call *call, const json_t *reply)
{
	json_t *new_ids = json_object_get(reply, "ids");
	if (!json_is_array(new_ids) || json_array_size(new_ids) != call->want_count)
		return connection_bad_reply("submit", "one id per job");
	uint64_t *ids = NULL;
	size_t count = 0;
	int rv = read_id_array(new_ids, "submit", &ids, &count);
	if (rv != WEFT_OK)
		return rv == WEFT_EPROTO ? connection_bad_reply("submit", "valid ids") : rv;
	call->ids = ids;
	call->id_count = count;
	return WEFT_OK;
}

static const struct async_op batch_op = {.name = "submit", .decode = batch_decode};

static int batch_start(weft_client *client, const weft_job_spec *const *specs, size_t count,
                       const weft_notify *notify, weft_call **handle)
{
	if (count == 0 || specs == NULL)
		return last_error_set(WEFT_EINVAL, "a batch needs at least one job");
	for (size_t i = 0; i < count; i++)
		if (specs[i] == NULL)
			return last_error_set(WEFT_EINVAL, "spec %zu of the batch is NULL", i);
	json_t *jobs = json_array();
	json_t *request = json_pack("{s:s, s:o}", "op", "submit", "jobs", jobs);
	if (request == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory building a request");
	for (size_t i = 0; i < count; i++) {
		json_t *job = NULL;
		if (job_spec_to_json(specs[i], &job) != 0 || json_array_append_new(jobs, job) != 0) {
			json_decref(request);
			return last_error_set(WEFT_ENOMEM, "out of memory building a request");
		}
	}
	weft_call *call = NULL;
	int rv = async_call_new(client, &batch_op, notify, &call);
	if (rv != WEFT_OK) {
		json_decref(request);
		return rv;
	}
	call->want_count = count;
	if ((rv = async_call_set_request_json(call, request, 0)) != WEFT_OK) {
		weft_call_free(call);
		return rv;
	}
	return async_call_start(call, handle);
}

int weft_submit_batch_async(weft_client *client, const weft_job_spec *const *specs,
                            size_t count, const weft_notify *notify, weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return batch_start(client, specs, count, notify, call);
}

int weft_submit_batch(weft_client *client, const weft_job_spec *const *specs, size_t count,
                      uint64_t *ids)
{
	last_error_clear();
	if (ids == NULL)
		return last_error_set(WEFT_EINVAL, "a batch needs at least one job");
	weft_call *call = NULL;
	int rv = ops_wait(batch_start(client, specs, count, NULL, &call), &call);
	if (rv == WEFT_OK)
		memcpy(ids, call->ids, count * sizeof(*ids));
	weft_call_free(call);
	return rv;
}

/* One outcome from the reply itself: submit with wait, result. */
static int outcome_decode(weft_call *call, const json_t *reply)
{
	return ops_outcome_from_reply(reply, call->op->name, &call->outcome);
}

static const struct async_op submit_wait_op = {.name = "submit", .decode = outcome_decode};

static int submit_wait_start(weft_client *client, const weft_job_spec *spec, double wait_seconds,
                             const weft_notify *notify, weft_call **call)
{
	if (spec == NULL)
		return last_error_set(WEFT_EINVAL, "no job spec given (NULL); make one with "
		                                   "weft_job_spec_new");
	if (!isfinite(wait_seconds) || wait_seconds < 0)
		return last_error_set(WEFT_EINVAL, "the wait must be a finite number of seconds >= 0");
	json_t *request = submit_request(spec);
	if (request == NULL)
		return weft_last_error()->code;
	if (add_seconds(request, "wait", wait_seconds) != 0) {
		json_decref(request);
		return last_error_set(WEFT_ENOMEM, "out of memory building a request");
	}
	return start(client, &submit_wait_op, request, wait_seconds, notify, call);
}

int weft_submit_wait_async(weft_client *client, const weft_job_spec *spec, double wait_seconds,
                           const weft_notify *notify, weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return submit_wait_start(client, spec, wait_seconds, notify, call);
}

int weft_submit_wait(weft_client *client, const weft_job_spec *spec, double wait_seconds,
                     weft_outcome **outcome)
{
	last_error_clear();
	if (outcome == NULL)
		return last_error_set(WEFT_EINVAL, "weft_submit_wait needs somewhere to put the "
		                                   "outcome");
	weft_call *call = NULL;
	int rv = ops_wait(submit_wait_start(client, spec, wait_seconds, NULL, &call), &call);
	if (rv == WEFT_OK)
		*outcome = weft_call_take_outcome(call);
	weft_call_free(call);
	return rv;
}

/* ---------------------------------------------------------------- status */

static int status_decode(weft_call *call, const json_t *reply)
{
	json_t *job = json_object_get(reply, "job");
	if (!json_is_object(job))
		return connection_bad_reply("status", "the job object");
	call->value = json_incref(job);
	return WEFT_OK;
}

static const struct async_op status_op = {.name = "status", .decode = status_decode};

static int status_start(weft_client *client, uint64_t id, const weft_notify *notify,
                        weft_call **call)
{
	int rv;
	if ((rv = connection_check_id(id)) != 0)
		return rv;
	return start(client, &status_op,
	             json_pack("{s:s, s:I}", "op", "status", "id", (json_int_t)id), 0, notify, call);
}

int weft_status_async(weft_client *client, uint64_t id, const weft_notify *notify,
                      weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return status_start(client, id, notify, call);
}

int weft_status(weft_client *client, uint64_t id, json_t **job)
{
	last_error_clear();
	int rv;
	if ((rv = connection_check_id(id)) != 0)
		return rv;
	if (job == NULL)
		return last_error_set(WEFT_EINVAL, "weft_status needs somewhere to put the job "
		                                   "(job is NULL)");
	weft_call *call = NULL;
	rv = ops_wait(status_start(client, id, NULL, &call), &call);
	if (rv == WEFT_OK) {
		*job = call->value;
		call->value = NULL;
	}
	weft_call_free(call);
	return rv;
}

/* ---------------------------------------------------------------- result */

static const struct async_op result_op = {.name = "result", .decode = outcome_decode};

static int result_start(weft_client *client, uint64_t id, double timeout,
                        const weft_notify *notify, weft_call **handle)
{
	int rv;
	if ((rv = connection_check_id(id)) != 0 || (rv = check_wait(timeout, "the timeout")) != 0)
		return rv;
	json_t *request = json_pack("{s:s, s:I}", "op", "result", "id", (json_int_t)id);
	if (request != NULL && add_seconds(request, "timeout", timeout) != 0) {
		json_decref(request);
		request = NULL;
	}
	weft_call *call = NULL;
	if ((rv = async_call_new(client, &result_op, notify, &call)) != WEFT_OK) {
		json_decref(request);
		return rv;
	}
	call->about_id = id;
	if ((rv = async_call_set_request_json(call, request, waits_forever(timeout) ? -1 : timeout)) !=
	    WEFT_OK) {
		weft_call_free(call);
		return rv;
	}
	return async_call_start(call, handle);
}

int weft_result_async(weft_client *client, uint64_t id, double timeout,
                      const weft_notify *notify, weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return result_start(client, id, timeout, notify, call);
}

int weft_result(weft_client *client, uint64_t id, double timeout, weft_outcome **outcome)
{
	last_error_clear();
	if (outcome == NULL)
		return last_error_set(WEFT_EINVAL, "weft_result needs somewhere to put the outcome");
	weft_call *call = NULL;
	int rv = ops_wait(result_start(client, id, timeout, NULL, &call), &call);
	if (rv == WEFT_OK)
		*outcome = weft_call_take_outcome(call);
	weft_call_free(call);
	return rv;
}

/* ----------------------------------------------------------- result_many */

/* The next part's request: up to part_size ids from want_next, with what is
 * left of the timeout. */
static int many_request(weft_call *call)
{
	size_t count = call->want_count - call->want_next;
	if (count > call->part_size)
		count = call->part_size;
	json_t *ids = id_array(call->want + call->want_next, count);
	json_t *request = json_pack("{s:s, s:o}", "op", "result", "ids", ids);
	double seconds = call->timeout;
	if (request != NULL && !waits_forever(seconds)) {
		seconds = call->deadline - async_now();
		if (seconds < 0)
			seconds = 0;
		if (add_seconds(request, "timeout", seconds) != 0) {
			json_decref(request);
			request = NULL;
		}
	}
	return async_call_set_request_json(call, request, seconds);
}

static int many_decode(weft_call *call, const json_t *reply)
{
	json_t *results = json_object_get(reply, "results");
	size_t count = call->want_count - call->want_next;
	if (count > call->part_size)
		count = call->part_size;
	if (!json_is_array(results) || json_array_size(results) != count)
		return connection_bad_reply("result", "one result per id");
	for (size_t i = 0; i < count; i++) {
		weft_outcome *outcome = NULL;
		int rv = ops_outcome_from_reply(json_array_get(results, i), "result", &outcome);
		if (rv != WEFT_OK)
			return rv;
		call->outcomes[call->outcome_count++] = outcome;
	}
	call->want_next += count;
	return WEFT_OK;
}

static int many_next(weft_call *call, bool *more)
{
	*more = call->want_next < call->want_count;
	return *more ? many_request(call) : WEFT_OK;
}

static const struct async_op many_op = {
	.name = "result", .decode = many_decode, .next_part = many_next};

typedef struct ops_position {
	uint64_t id;
	size_t position;
} ops_position;

static int compare_positions(const void *left, const void *right)
{
	const ops_position *a = left, *b = right;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return a->position < b->position ? -1 : a->position > b->position;
}

/* ids[0..count) without repeats, in the order of first appearance, into
 * call->want (owned). */
static int distinct_ids(weft_call *call, const uint64_t *ids, size_t count)
{
	ops_position *sorted = allocator_calloc(count, sizeof(*sorted));
	bool *repeat = allocator_calloc(count, sizeof(*repeat));
	call->want = allocator_calloc(count, sizeof(*call->want));
	if (sorted == NULL || repeat == NULL || call->want == NULL) {
		allocator_free(sorted);
		allocator_free(repeat);
		return last_error_set(WEFT_ENOMEM, "out of memory starting a batch result");
	}
	for (size_t i = 0; i < count; i++)
		sorted[i] = (ops_position){.id = ids[i], .position = i};
	qsort(sorted, count, sizeof(*sorted), compare_positions);
	for (size_t i = 1; i < count; i++)
		if (sorted[i].id == sorted[i - 1].id)
			repeat[sorted[i].position] = true;
	for (size_t i = 0; i < count; i++)
		if (!repeat[i])
			call->want[call->want_count++] = ids[i];
	allocator_free(sorted);
	allocator_free(repeat);
	return WEFT_OK;
}

static int many_start(weft_client *client, const uint64_t *ids, size_t count, double timeout,
                      const weft_notify *notify, weft_call **handle)
{
	int rv;
	if ((rv = check_ids(ids, count, "the batch result", true)) != 0 ||
	    (rv = check_wait(timeout, "the timeout")) != 0)
		return rv;
	weft_call *call = NULL;
	if ((rv = async_call_new(client, &many_op, notify, &call)) != WEFT_OK)
		return rv;
	if ((rv = distinct_ids(call, ids, count)) != WEFT_OK)
		goto fail;
	if ((call->outcomes = allocator_calloc(call->want_count, sizeof(*call->outcomes))) ==
	    NULL) {
		rv = last_error_set(WEFT_ENOMEM, "out of memory starting a batch result");
		goto fail;
	}
	size_t room = client->max_message > OPS_REQUEST_SLACK + OPS_ID_BYTES
	                      ? (client->max_message - OPS_REQUEST_SLACK) / OPS_ID_BYTES
	                      : 1;
	call->part_size = room < OPS_MAX_IDS ? room : OPS_MAX_IDS;
	call->timeout = waits_forever(timeout) ? -1 : timeout;
	call->deadline = async_now() + (waits_forever(timeout) ? 0 : timeout);
	if ((rv = many_request(call)) != WEFT_OK)
		goto fail;
	return async_call_start(call, handle);

fail:
	weft_call_free(call);
	return rv;
}

int weft_result_many_async(weft_client *client, const uint64_t *ids, size_t count,
                           double timeout, const weft_notify *notify, weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return many_start(client, ids, count, timeout, notify, call);
}

int weft_result_many(weft_client *client, const uint64_t *ids, size_t count, double timeout,
                     weft_outcome ***outcomes, size_t *outcome_count)
{
	last_error_clear();
	if (outcomes == NULL || outcome_count == NULL)
		return last_error_set(WEFT_EINVAL, "weft_result_many needs somewhere to put the "
		                                   "outcomes");
	weft_call *call = NULL;
	int rv = ops_wait(many_start(client, ids, count, timeout, NULL, &call), &call);
	if (rv == WEFT_OK) {
		*outcomes = call->outcomes;
		*outcome_count = call->outcome_count;
		call->outcomes = NULL;
		call->outcome_count = 0;
	}
	weft_call_free(call);
	return rv;
}

void weft_outcomes_free(weft_outcome **outcomes, size_t count)
{
	if (outcomes == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		weft_outcome_free(outcomes[i]);
	allocator_free(outcomes);
}

/* ------------------------------------------------ wait and as_completed */

static int wait_decode(weft_call *call, const json_t *reply)
{
	weft_wait_result *found = allocator_calloc(1, sizeof(*found));
	if (found == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory reading a %s reply",
		                      call->op->name);
	int rv;
	if ((rv = read_id_array(json_object_get(reply, "done"), call->op->name, &found->done,
	                        &found->done_count)) != 0 ||
	    (rv = read_id_array(json_object_get(reply, "pending"), call->op->name,
	                        &found->pending, &found->pending_count)) != 0) {
		weft_wait_result_free(found);
		return rv;
	}
	call->wait = found;
	return WEFT_OK;
}

static const struct async_op wait_op = {.name = "wait", .decode = wait_decode};
static const struct async_op as_completed_op = {.name = "as_completed", .decode = wait_decode};

static const char *return_when_name(weft_return_when return_when)
{
	switch (return_when) {
	case WEFT_FIRST_COMPLETED:
		return "FIRST_COMPLETED";
	case WEFT_FIRST_EXCEPTION:
		return "FIRST_EXCEPTION";
	case WEFT_ALL_COMPLETED:
		return "ALL_COMPLETED";
	}
	return NULL;
}

/* wait (when: the return_when name) or as_completed (when NULL). */
static int wait_start(weft_client *client, const uint64_t *ids, size_t count, double timeout,
                      const char *when, const weft_notify *notify, weft_call **call)
{
	int rv;
	const char *op = when != NULL ? "wait" : "as_completed";
	if ((rv = check_ids(ids, count, op, false)) != 0 ||
	    (rv = check_wait(timeout, "the timeout")) != 0)
		return rv;
	json_t *request = json_pack("{s:s, s:o}", "op", op, "ids", id_array(ids, count));
	if (request != NULL && when != NULL &&
	    json_object_set_new(request, "return_when", json_string(when)) != 0) {
		json_decref(request);
		request = NULL;
	}
	if (request != NULL && add_seconds(request, "timeout", timeout) != 0) {
		json_decref(request);
		request = NULL;
	}
	return start(client, when != NULL ? &wait_op : &as_completed_op, request,
	             waits_forever(timeout) ? -1 : timeout, notify, call);
}

int weft_wait_async(weft_client *client, const uint64_t *ids, size_t count, double timeout,
                    weft_return_when return_when, const weft_notify *notify, weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	const char *when = return_when_name(return_when);
	if (when == NULL)
		return last_error_set(WEFT_EINVAL, "return_when must be one of WEFT_ALL_COMPLETED, "
		                                   "WEFT_FIRST_COMPLETED, WEFT_FIRST_EXCEPTION");
	return wait_start(client, ids, count, timeout, when, notify, call);
}

int weft_as_completed_async(weft_client *client, const uint64_t *ids, size_t count,
                            double timeout, const weft_notify *notify, weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return wait_start(client, ids, count, timeout, NULL, notify, call);
}

int weft_wait(weft_client *client, const uint64_t *ids, size_t count, double timeout,
              weft_return_when return_when, weft_wait_result **result)
{
	last_error_clear();
	const char *when = return_when_name(return_when);
	if (when == NULL)
		return last_error_set(WEFT_EINVAL, "return_when must be one of WEFT_ALL_COMPLETED, "
		                                   "WEFT_FIRST_COMPLETED, WEFT_FIRST_EXCEPTION");
	if (result == NULL)
		return last_error_set(WEFT_EINVAL, "weft_wait needs somewhere to put the result");
	weft_call *call = NULL;
	int rv = ops_wait(wait_start(client, ids, count, timeout, when, NULL, &call), &call);
	if (rv == WEFT_OK) {
		*result = call->wait;
		call->wait = NULL;
	}
	weft_call_free(call);
	return rv;
}

/* ---------------------------------------------------------------- cancel */

static int cancel_decode(weft_call *call, const json_t *reply)
{
	json_t *flag = json_object_get(reply, "cancelled");
	const char *state_name = json_string_value(json_object_get(reply, "state"));
	if (!json_is_boolean(flag) || state_name == NULL)
		return connection_bad_reply("cancel", "\"cancelled\" and \"state\"");
	call->cancelled = json_is_true(flag);
	call->state = weft_state_from_name(state_name);
	return WEFT_OK;
}

static const struct async_op cancel_op = {.name = "cancel", .decode = cancel_decode};

static int cancel_start(weft_client *client, uint64_t id, const weft_notify *notify,
                        weft_call **handle)
{
	int rv;
	if ((rv = connection_check_id(id)) != 0)
		return rv;
	weft_call *call = NULL;
	if ((rv = async_call_new(client, &cancel_op, notify, &call)) != WEFT_OK)
		return rv;
	call->about_id = id;
	if ((rv = async_call_set_request_json(
		     call, json_pack("{s:s, s:I}", "op", "cancel", "id", (json_int_t)id), 0)) !=
	    WEFT_OK) {
		weft_call_free(call);
		return rv;
	}
	return async_call_start(call, handle);
}

int weft_cancel_async(weft_client *client, uint64_t id, const weft_notify *notify,
                      weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return cancel_start(client, id, notify, call);
}

int weft_call_cancel_outcome(const weft_call *call, bool *cancelled, weft_state *state)
{
	if (call == NULL || call->op != &cancel_op || call->error != WEFT_OK)
		return WEFT_EINVAL;
	if (cancelled != NULL)
		*cancelled = call->cancelled;
	if (state != NULL)
		*state = call->state;
	return WEFT_OK;
}

int weft_cancel(weft_client *client, uint64_t id, bool *cancelled, weft_state *state)
{
	last_error_clear();
	weft_call *call = NULL;
	int rv = ops_wait(cancel_start(client, id, NULL, &call), &call);
	if (rv == WEFT_OK)
		weft_call_cancel_outcome(call, cancelled, state);
	weft_call_free(call);
	return rv;
}

/* --------------------------------------------------------- bare futures */

static int future_new_decode(weft_call *call, const json_t *reply)
{
	if (!connection_read_id(json_object_get(reply, "id"), &call->id))
		return connection_bad_reply("future.new", "the id");
	return WEFT_OK;
}

static const struct async_op future_new_op = {.name = "future.new", .decode = future_new_decode};
static const struct async_op future_set_op = {.name = "future.set"};

static int future_new_start(weft_client *client, const json_t *labels,
                            const weft_notify *notify, weft_call **call)
{
	if (labels != NULL && !json_is_object(labels))
		return last_error_set(WEFT_EINVAL, "a future's labels must be a JSON object");
	json_t *request = json_pack("{s:s}", "op", "future.new");
	/* json_object_set only takes a reference to labels; it never changes
	 * labels itself, so dropping const is safe. */
	if (request != NULL && labels != NULL &&
	    json_object_set(request, "labels", (json_t *)labels) != 0) {
		json_decref(request);
		request = NULL;
	}
	return start(client, &future_new_op, request, 0, notify, call);
}

int weft_future_new_async(weft_client *client, const json_t *labels, const weft_notify *notify,
                          weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return future_new_start(client, labels, notify, call);
}

int weft_future_new(weft_client *client, const json_t *labels, uint64_t *id)
{
	last_error_clear();
	weft_call *call = NULL;
	int rv = ops_wait(future_new_start(client, labels, NULL, &call), &call);
	if (rv == WEFT_OK)
		*id = call->id;
	weft_call_free(call);
	return rv;
}

/* future.set with key: value (stolen, may be NULL: out of memory). */
static int future_set_start(weft_client *client, uint64_t id, const char *key, json_t *value,
                            const weft_notify *notify, weft_call **handle)
{
	json_t *request = NULL;
	if (value != NULL)
		request = json_pack("{s:s, s:I, s:o}", "op", "future.set", "id", (json_int_t)id, key,
		                    value);
	weft_call *call = NULL;
	int rv = async_call_new(client, &future_set_op, notify, &call);
	if (rv != WEFT_OK) {
		json_decref(request);
		return rv;
	}
	call->about_id = id;
	if ((rv = async_call_set_request_json(call, request, 0)) != WEFT_OK) {
		weft_call_free(call);
		return rv;
	}
	return async_call_start(call, handle);
}

static int future_result_start(weft_client *client, uint64_t id, json_t *result,
                               const weft_notify *notify, weft_call **call)
{
	int rv;
	if ((rv = connection_check_id(id)) != 0)
		return rv;
	if (result == NULL)
		return last_error_set(WEFT_EINVAL, "a future's result must be a JSON value, not NULL "
		                                   "(json_null() for null)");
	return future_set_start(client, id, "result", json_incref(result), notify, call);
}

static int future_error_start(weft_client *client, uint64_t id, const char *type,
                              const char *message, const weft_notify *notify, weft_call **call)
{
	int rv;
	if ((rv = connection_check_id(id)) != 0)
		return rv;
	if (type == NULL || type[0] == '\0' || strlen(type) > OPS_MAX_TYPE_BYTES)
		return last_error_set(WEFT_EINVAL, "a future's error type must be 1 to %d bytes, "
		                                   "such as \"ValueError\"",
		                      OPS_MAX_TYPE_BYTES);
	if (message == NULL)
		return last_error_set(WEFT_EINVAL, "a future's error needs a message (\"\" for none)");
	if (!job_spec_is_utf8(type, strlen(type)) || !job_spec_is_utf8(message, strlen(message)))
		return last_error_set(WEFT_EINVAL, "a future's error type and message must be UTF-8");
	return future_set_start(client, id, "error",
	                        json_pack("{s:s, s:s}", "type", type, "message", message), notify,
	                        call);
}

int weft_future_set_result_async(weft_client *client, uint64_t id, json_t *result,
                                 const weft_notify *notify, weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return future_result_start(client, id, result, notify, call);
}

int weft_future_set_error_async(weft_client *client, uint64_t id, const char *type,
                                const char *message, const weft_notify *notify,
                                weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	return future_error_start(client, id, type, message, notify, call);
}

int weft_future_set_result(weft_client *client, uint64_t id, json_t *result)
{
	last_error_clear();
	weft_call *call = NULL;
	int rv = ops_wait(future_result_start(client, id, result, NULL, &call), &call);
	weft_call_free(call);
	return rv;
}

int weft_future_set_error(weft_client *client, uint64_t id, const char *type,
                          const char *message)
{
	last_error_clear();
	weft_call *call = NULL;
	int rv = ops_wait(future_error_start(client, id, type, message, NULL, &call), &call);
	weft_call_free(call);
	return rv;
}

/* --------------------------------------------------------------- request */

static const struct async_op request_op = {.name = "request", .raw = true};

int weft_request_async(weft_client *client, const json_t *request, double reply_wait,
                       const weft_notify *notify, weft_call **call)
{
	OPS_CHECK_NOTIFY(notify);
	if (request == NULL)
		return last_error_set(WEFT_EINVAL, "no request given");
	/* json_incref only counts a reference; the request is not changed. */
	return start(client, &request_op, json_incref((json_t *)request), reply_wait, notify, call);
}
