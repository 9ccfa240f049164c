/*
 * The ops of the protocol as C calls (weft/client.h): each builds a request,
 * makes one round trip (connection_op) and decodes the reply. A reply that
 * says ok but lacks what the protocol promises is WEFT_EPROTO.
 */
#include <string.h>

#include "client/allocator.h"
#include "client/connection.h"
#include "client/job_spec.h"
#include "client/last_error.h"
#include "proto/proto.h"

/* Every state has a name; "unknown" is never sent by a daemon, so from_name
 * cannot return it for a real state. */
#define STATE_NAME_(name, wire) [WEFT_STATE_##name] = wire,
static const char *const state_names[] = {PROTO_STATE_MAP(STATE_NAME_)[WEFT_STATE_UNKNOWN] =
                                                  "unknown"};
#undef STATE_NAME_

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

int weft_list(weft_client *client, const json_t *filter, json_t **jobs, bool *more)
{
	return weft_list_page(client, filter, jobs, more, NULL);
}

int weft_list_page(weft_client *client, const json_t *filter, json_t **jobs, bool *more,
                   uint64_t *cursor)
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
	if (cursor != NULL) {
		const char *order = json_string_value(json_object_get(reply, "order"));
		json_t *next = json_object_get(
			reply, order != NULL && strcmp(order, "oldest") == 0 ? "after" : "before");
		*cursor = json_is_integer(next) && json_integer_value(next) >= 0
		                  ? (uint64_t)json_integer_value(next)
		                  : 0;
	}
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
