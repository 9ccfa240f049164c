/*
 * The ops of the protocol as C calls (weft/client.h): each builds a request,
 * makes one round trip (connection_op) and decodes the reply. A reply that
 * says ok but lacks what the protocol promises is WEFT_EPROTO.
 */
#include <math.h>
#include <string.h>

#include "client/allocator.h"
#include "client/connection.h"
#include "client/job_spec.h"
#include "client/last_error.h"

/* Every state has a name; "unknown" is never sent by a daemon, so from_name
 * cannot return it for a real state. */
static const char *const state_names[] = {
	[WEFT_STATE_QUEUED] = "queued",       [WEFT_STATE_RUNNING] = "running",
	[WEFT_STATE_DONE] = "done",           [WEFT_STATE_FAILED] = "failed",
	[WEFT_STATE_CANCELLED] = "cancelled", [WEFT_STATE_UNKNOWN] = "unknown",
	[WEFT_STATE_PENDING] = "pending",     [WEFT_STATE_WAITING] = "waiting",
};

const char *weft_state_name(weft_state state)
{
	if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
		return "unknown";
	return state_names[state];
}

weft_state weft_state_from_name(const char *name)
{
	if (name == NULL)
		return WEFT_STATE_UNKNOWN;
	for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(state_names[i], name) == 0)
			return (weft_state)i;
	return WEFT_STATE_UNKNOWN;
}

bool weft_state_is_finished(weft_state state)
{
	return state == WEFT_STATE_DONE || state == WEFT_STATE_FAILED ||
	       state == WEFT_STATE_CANCELLED;
}

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

void weft_outcome_free(weft_outcome *outcome)
{
	if (outcome == NULL)
		return;
	json_decref(outcome->result);
	json_decref(outcome->error_details);
	allocator_free(outcome->error_type);
	allocator_free(outcome->error_message);
	allocator_free(outcome);
}

/* Decodes {"id", "state", "result" | "error"} (borrowed) into a new outcome. */
static int outcome_from_reply(const json_t *reply, const char *op, weft_outcome **out)
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

int weft_ping(weft_client *client, json_t **reply)
{
	last_error_clear();
	json_t *answer = NULL;
	int rv = connection_op(client, json_pack("{s:s}", "op", "ping"), 0, &answer);
	if (rv != 0)
		return rv;
	if (reply != NULL)
		*reply = answer;
	else
		json_decref(answer);
	return WEFT_OK;
}

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

int weft_submit(weft_client *client, const weft_job_spec *spec, uint64_t *id)
{
	last_error_clear();
	if (spec == NULL)
		return last_error_set(WEFT_EINVAL, "no job spec given (NULL); make one with "
		                                   "weft_job_spec_new");
	if (id == NULL)
		return last_error_set(WEFT_EINVAL, "weft_submit needs somewhere to put the new job's "
		                                   "id (id is NULL)");
	json_t *request = submit_request(spec);
	if (request == NULL)
		return weft_last_error()->code;
	json_t *reply = NULL;
	int rv = connection_op(client, request, 0, &reply);
	if (rv != 0)
		return rv;
	uint64_t new_id = 0;
	if (!connection_read_id(json_object_get(reply, "id"), &new_id))
		rv = connection_bad_reply("submit", "the new job's id");
	json_decref(reply);
	if (rv == 0)
		*id = new_id;
	return rv;
}

int weft_submit_batch(weft_client *client, const weft_job_spec *const *specs, size_t count,
                      uint64_t *ids)
{
	last_error_clear();
	if (count == 0 || specs == NULL || ids == NULL)
		return last_error_set(WEFT_EINVAL, "a batch needs at least one job");
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
	json_t *reply = NULL;
	int rv = connection_op(client, request, 0, &reply);
	if (rv != 0)
		return rv;
	json_t *new_ids = json_object_get(reply, "ids");
	if (!json_is_array(new_ids) || json_array_size(new_ids) != count) {
		rv = connection_bad_reply("submit", "one id per job");
		goto done;
	}
	/* Check every id before writing any: outputs are written only on success. */
	for (size_t i = 0; i < count; i++) {
		uint64_t id;
		if (!connection_read_id(json_array_get(new_ids, i), &id)) {
			rv = connection_bad_reply("submit", "valid ids");
			goto done;
		}
	}
	for (size_t i = 0; i < count; i++)
		connection_read_id(json_array_get(new_ids, i), &ids[i]);
done:
	json_decref(reply);
	return rv;
}

int weft_submit_wait(weft_client *client, const weft_job_spec *spec, double wait_seconds,
                     weft_outcome **outcome)
{
	last_error_clear();
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
	json_t *reply = NULL;
	int rv = connection_op(client, request, wait_seconds, &reply);
	if (rv != 0)
		return rv;
	rv = outcome_from_reply(reply, "submit", outcome);
	json_decref(reply);
	return rv;
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
	return connection_op_member(
		client, json_pack("{s:s, s:I}", "op", "status", "id", (json_int_t)id), "status",
		"job", JSON_OBJECT, "the job object", job, NULL);
}

int weft_result(weft_client *client, uint64_t id, double timeout, weft_outcome **outcome)
{
	last_error_clear();
	int rv;
	if ((rv = connection_check_id(id)) != 0 || (rv = check_wait(timeout, "the timeout")) != 0)
		return rv;
	json_t *request = json_pack("{s:s, s:I}", "op", "result", "id", (json_int_t)id);
	if (request != NULL && add_seconds(request, "timeout", timeout) != 0) {
		json_decref(request);
		request = NULL;
	}
	json_t *reply = NULL;
	rv = connection_op(client, request, waits_forever(timeout) ? -1 : timeout, &reply);
	if (rv != 0) {
		last_error_set_id(id);
		return rv;
	}
	rv = outcome_from_reply(reply, "result", outcome);
	json_decref(reply);
	return rv;
}

void weft_wait_result_free(weft_wait_result *result)
{
	if (result == NULL)
		return;
	allocator_free(result->done);
	allocator_free(result->pending);
	allocator_free(result);
}

/* Copies an array of ids (borrowed) into a new C array; *ids stays NULL when
 * the array is empty. */
static int read_id_array(const json_t *array, uint64_t **ids, size_t *count)
{
	if (!json_is_array(array))
		return connection_bad_reply("wait", "the done and pending lists");
	size_t size = json_array_size(array);
	uint64_t *copy = NULL;
	if (size > 0 && (copy = allocator_calloc(size, sizeof(*copy))) == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory reading a wait reply");
	for (size_t i = 0; i < size; i++) {
		if (!connection_read_id(json_array_get(array, i), &copy[i])) {
			allocator_free(copy);
			return connection_bad_reply("wait", "valid ids");
		}
	}
	*ids = copy;
	*count = size;
	return WEFT_OK;
}

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

int weft_wait(weft_client *client, const uint64_t *ids, size_t count, double timeout,
              weft_return_when return_when, weft_wait_result **result)
{
	last_error_clear();
	int rv;
	const char *when = return_when_name(return_when);
	if (when == NULL)
		return last_error_set(WEFT_EINVAL, "return_when must be one of WEFT_ALL_COMPLETED, "
		                                   "WEFT_FIRST_COMPLETED, WEFT_FIRST_EXCEPTION");
	if (count == 0 || ids == NULL)
		return last_error_set(WEFT_EINVAL, "wait needs at least one job id");
	if ((rv = check_wait(timeout, "the timeout")) != 0)
		return rv;
	for (size_t i = 0; i < count; i++)
		if ((rv = connection_check_id(ids[i])) != 0)
			return rv;
	json_t *id_array = json_array();
	json_t *request =
		json_pack("{s:s, s:o, s:s}", "op", "wait", "ids", id_array, "return_when", when);
	if (request == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory building a request");
	for (size_t i = 0; i < count; i++) {
		if (json_array_append_new(id_array, json_integer((json_int_t)ids[i])) != 0) {
			json_decref(request);
			return last_error_set(WEFT_ENOMEM, "out of memory building a request");
		}
	}
	if (add_seconds(request, "timeout", timeout) != 0) {
		json_decref(request);
		return last_error_set(WEFT_ENOMEM, "out of memory building a request");
	}
	json_t *reply = NULL;
	if ((rv = connection_op(client, request, waits_forever(timeout) ? -1 : timeout, &reply)) !=
	    0)
		return rv;
	weft_wait_result *found = allocator_calloc(1, sizeof(*found));
	if (found == NULL) {
		rv = last_error_set(WEFT_ENOMEM, "out of memory reading a wait reply");
		goto done;
	}
	if ((rv = read_id_array(json_object_get(reply, "done"), &found->done,
	                        &found->done_count)) != 0 ||
	    (rv = read_id_array(json_object_get(reply, "pending"), &found->pending,
	                        &found->pending_count)) != 0) {
		weft_wait_result_free(found);
		goto done;
	}
	*result = found;
done:
	json_decref(reply);
	return rv;
}

int weft_cancel(weft_client *client, uint64_t id, bool *cancelled, weft_state *state)
{
	last_error_clear();
	int rv;
	if ((rv = connection_check_id(id)) != 0)
		return rv;
	json_t *reply = NULL;
	rv = connection_op(client, json_pack("{s:s, s:I}", "op", "cancel", "id", (json_int_t)id), 0,
	                   &reply);
	if (rv != 0) {
		last_error_set_id(id);
		return rv;
	}
	json_t *flag = json_object_get(reply, "cancelled");
	const char *state_name = json_string_value(json_object_get(reply, "state"));
	if (!json_is_boolean(flag) || state_name == NULL) {
		rv = connection_bad_reply("cancel", "\"cancelled\" and \"state\"");
	} else {
		if (cancelled != NULL)
			*cancelled = json_is_true(flag);
		if (state != NULL)
			*state = weft_state_from_name(state_name);
	}
	json_decref(reply);
	return rv;
}

int weft_list(weft_client *client, const json_t *filter, json_t **jobs, bool *more)
{
	last_error_clear();
	if (filter != NULL && !json_is_object(filter))
		return last_error_set(WEFT_EINVAL, "the list filter must be a JSON object");
	if (jobs == NULL)
		return last_error_set(WEFT_EINVAL, "weft_list needs somewhere to put the jobs "
		                                   "(jobs is NULL)");
	json_t *request = json_object();
	/* json_object_update only takes references to filter's members; it does
	 * not change filter itself, so dropping const is safe. */
	if (request == NULL ||
	    (filter != NULL && json_object_update(request, (json_t *)filter) != 0) ||
	    json_object_set_new(request, "op", json_string("list")) != 0) {
		json_decref(request);
		return last_error_set(WEFT_ENOMEM, "out of memory building a request");
	}
	json_t *reply = NULL;
	int rv = connection_op_member(client, request, "list", "jobs", JSON_ARRAY, "the jobs", jobs,
	                              &reply);
	if (rv != 0)
		return rv;
	if (more != NULL)
		*more = json_is_true(json_object_get(reply, "more"));
	json_decref(reply);
	return WEFT_OK;
}

int weft_functions(weft_client *client, json_t **functions)
{
	last_error_clear();
	if (functions == NULL)
		return last_error_set(WEFT_EINVAL, "weft_functions needs somewhere to put the "
		                                   "functions (functions is NULL)");
	return connection_op_member(client, json_pack("{s:s}", "op", "functions"), "functions",
	                            "functions", JSON_ARRAY, "the functions", functions, NULL);
}

int weft_stats(weft_client *client, json_t **stats)
{
	last_error_clear();
	json_t *reply = NULL;
	int rv = connection_op(client, json_pack("{s:s}", "op", "stats"), 0, &reply);
	if (rv != 0)
		return rv;
	json_object_del(reply, "ok");
	*stats = reply;
	return WEFT_OK;
}

int weft_request(weft_client *client, const json_t *request, double reply_wait, json_t **reply)
{
	last_error_clear();
	if (request == NULL)
		return last_error_set(WEFT_EINVAL, "no request given");
	return connection_round_trip_json(client, request, reply_wait, reply);
}

int weft_request_bytes(weft_client *client, const void *bytes, size_t size, double reply_wait,
                       json_t **reply)
{
	last_error_clear();
	if (bytes == NULL && size > 0)
		return last_error_set(WEFT_EINVAL, "no request given");
	return connection_round_trip(client, bytes, size, reply_wait, reply);
}
