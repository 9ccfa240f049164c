/*
 * Request decoding; see request.h. Every refusal says which field is wrong and
 * what would be right, since the message is what a user reads.
 */
#include "daemon/server/request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/fields.h"
#include "daemon/core/events.h"
#include "daemon/core/jobs.h"
#include "daemon/core/jobspec.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/base/problem.h"
#include "daemon/core/queues.h"
#include "proto/base64.h"

#define REQUEST_OP_NAME_(name, wire) wire,
static const char *const op_names[] = {PROTO_OP_MAP(REQUEST_OP_NAME_)};
#undef REQUEST_OP_NAME_

/* The fields each op takes, besides "op". */
static const char *const op_fields[REQUEST_OP_COUNT][24] = {
	[REQUEST_PING] = {NULL},
	[REQUEST_SUBMIT] = {JOBSPEC_FIELDS, "wait", "jobs", JOBSPEC_SCHEDULE_FIELDS, NULL},
	[REQUEST_STATUS] = {"id", NULL},
	[REQUEST_RESULT] = {"id", "ids", "timeout", "output", NULL},
	[REQUEST_WAIT] = {"ids", "timeout", "return_when", NULL},
	[REQUEST_CANCEL] = {"id", NULL},
	[REQUEST_LIST] = {"state", "fn", "labels", "after", "before", "order", "limit", NULL},
	[REQUEST_FUNCTIONS] = {NULL},
	[REQUEST_STATS] = {NULL},
	[REQUEST_FUTURE_NEW] = {"labels", NULL},
	[REQUEST_FUTURE_SET] = {"id", "result", "error", NULL},
	[REQUEST_AS_COMPLETED] = {"ids", "timeout", NULL},
	[REQUEST_QUEUE_SET] = {"name", "max", NULL},
	[REQUEST_QUEUE_PAUSE] = {"name", NULL},
	[REQUEST_QUEUE_RESUME] = {"name", NULL},
	[REQUEST_QUEUES] = {NULL},
	[REQUEST_NEXT] = {"id", "index", "wait", "max", NULL},
	[REQUEST_EVENTS] = {"after", "wait", "limit", "filter", NULL},
	[REQUEST_OUTPUT] = {"id", "stream", "offset", "max", "wait", "binary", NULL},
	[REQUEST_INPUT] = {"id", "data", "bytes", "eof", NULL},
};

static int no_memory(struct problem *problem)
{
	return problem_set(problem, WEFT_ENOMEM, NULL,
	                   "weftd is out of memory and did nothing of this request; try again "
	                   "later, or send a smaller one");
}

/* `jobs` is root's "jobs" field, NULL when absent (request_decode has it already). */
static int decode_submit(json_t *root, json_t *jobs, struct request *request,
                         struct problem *problem)
{
	json_t *wait = json_object_get(root, "wait");
	int rv;
	if (jobs == NULL) {
		request->jobs = memory_try_zalloc(sizeof(*request->jobs));
		if (request->jobs == NULL)
			return no_memory(problem);
		if ((rv = fields_check(root, op_fields[REQUEST_SUBMIT], true, "op 'submit'", problem)) !=
		            WEFT_OK ||
		    (rv = jobspec_decode_fields(root, &request->jobs[0], problem)) != WEFT_OK)
			return rv;
		request->job_count = 1;
		if (wait != NULL) {
			if ((rv = fields_seconds(wait, "wait", false, &request->wait, problem)) != WEFT_OK)
				return rv;
			request->has_wait = true;
		}
		return WEFT_OK;
	}
	static const char *const single_only[] = {JOBSPEC_FIELDS, "wait", JOBSPEC_SCHEDULE_FIELDS,
	                                          NULL};
	for (const char *const *name = single_only; *name != NULL; name++)
		if (json_object_get(root, *name) != NULL)
			return problem_set(problem, WEFT_EBADFIELD, *name,
			                   "field '%s' cannot be used with 'jobs': put it in each job",
			                   *name);
	if (!json_is_array(jobs) || json_array_size(jobs) == 0 ||
	    json_array_size(jobs) > REQUEST_MAX_BATCH)
		return problem_set(problem, WEFT_EBADFIELD, "jobs",
		                   "field 'jobs' must be an array of 1 to %d job objects",
		                   REQUEST_MAX_BATCH);
	size_t count = json_array_size(jobs);
	request->batch = true;
	request->jobs = memory_try_zalloc(count * sizeof(*request->jobs));
	if (request->jobs == NULL)
		return no_memory(problem);
	for (size_t i = 0; i < count; i++) {
		if (jobspec_decode(json_array_get(jobs, i), &request->jobs[i], problem) == WEFT_OK) {
			request->job_count = i + 1;
			continue;
		}
		problem_in_batch(problem, (long)i);
		return problem->code;
	}
	return WEFT_OK;
}

static int compare_positions(const void *left, const void *right)
{
	const uint64_t *a = left, *b = right;
	/* Sort by id, then by position, so the first appearance comes first. */
	if (a[0] != b[0])
		return a[0] < b[0] ? -1 : 1;
	return a[1] < b[1] ? -1 : a[1] > b[1];
}

static int decode_ids(json_t *value, struct request *request, struct problem *problem)
{
	if (!json_is_array(value) || json_array_size(value) == 0 ||
	    json_array_size(value) > REQUEST_MAX_IDS)
		return problem_set(problem, WEFT_EBADFIELD, "ids",
		                   "field 'ids' must be an array of 1 to %d job ids", REQUEST_MAX_IDS);
	size_t count = json_array_size(value);
	uint64_t *ids = memory_try_alloc(count * sizeof(*ids));
	if (ids == NULL)
		return no_memory(problem);
	for (size_t i = 0; i < count; i++) {
		char field[32];
		snprintf(field, sizeof(field), "ids[%zu]", i);
		int rv = fields_id(json_array_get(value, i), field, &ids[i], problem);
		if (rv != WEFT_OK) {
			free(ids);
			return rv;
		}
	}
	/* Remove duplicates, keeping the order of first appearance. */
	uint64_t(*pairs)[2] = memory_try_alloc(count * sizeof(*pairs));
	bool *duplicate = memory_try_zalloc(count * sizeof(*duplicate));
	if (pairs == NULL || duplicate == NULL) {
		free(duplicate);
		free(pairs);
		free(ids);
		return no_memory(problem);
	}
	for (size_t i = 0; i < count; i++) {
		pairs[i][0] = ids[i];
		pairs[i][1] = i;
	}
	qsort(pairs, count, sizeof(*pairs), compare_positions);
	for (size_t i = 1; i < count; i++)
		if (pairs[i][0] == pairs[i - 1][0])
			duplicate[pairs[i][1]] = true;
	size_t kept = 0;
	for (size_t i = 0; i < count; i++)
		if (!duplicate[i])
			ids[kept++] = ids[i];
	free(duplicate);
	free(pairs);
	request->ids = ids;
	request->id_count = kept;
	return WEFT_OK;
}

static int decode_timeout(json_t *root, struct request *request, struct problem *problem)
{
	json_t *timeout = json_object_get(root, "timeout");
	if (timeout == NULL)
		return WEFT_OK;
	request->has_timeout = true;
	return fields_seconds(timeout, "timeout", false, &request->timeout, problem);
}

/* Longest error type a client may give a future. */
#define FUTURE_ERROR_TYPE_MAX 64

static int decode_future_set(json_t *root, struct request *request, struct problem *problem)
{
	int rv = fields_id(json_object_get(root, "id"), "id", &request->id, problem);
	if (rv != WEFT_OK)
		return rv;
	request->result = json_object_get(root, "result");
	request->error = json_object_get(root, "error");
	if ((request->result == NULL) == (request->error == NULL))
		return problem_set(problem, WEFT_EBADFIELD, "result",
		                   "give the future either a 'result' (any JSON value) or an 'error' "
		                   "({\"type\": ..., \"message\": ...}), not both or neither");
	if (request->error == NULL)
		return WEFT_OK;
	const json_t *type = json_object_get(request->error, "type");
	const json_t *message = json_object_get(request->error, "message");
	if (!json_is_object(request->error) || json_object_size(request->error) != 2 ||
	    !json_is_string(type) || json_string_length(type) == 0 ||
	    json_string_length(type) > FUTURE_ERROR_TYPE_MAX || !json_is_string(message))
		return problem_set(problem, WEFT_EBADFIELD, "error",
		                   "field 'error' must be {\"type\": a name of 1 to %d bytes, "
		                   "\"message\": a string}",
		                   FUTURE_ERROR_TYPE_MAX);
	return WEFT_OK;
}

static int decode_wait(json_t *root, struct request *request, struct problem *problem)
{
	json_t *wait = json_object_get(root, "wait");
	if (wait == NULL)
		return WEFT_OK;
	request->has_timeout = true;
	return fields_seconds(wait, "wait", false, &request->timeout, problem);
}

static int decode_next(json_t *root, struct request *request, struct problem *problem)
{
	int rv = fields_id(json_object_get(root, "id"), "id", &request->id, problem);
	if (rv != WEFT_OK)
		return rv;
	json_t *value = json_object_get(root, "index");
	if (!json_is_integer(value) || json_integer_value(value) < 0)
		return problem_set(problem, WEFT_EBADFIELD, "index",
		                   "field 'index' must be an integer >= 0: the item to read (0 is "
		                   "the first); reading it drops the items before it");
	request->index = (uint64_t)json_integer_value(value);
	if ((value = json_object_get(root, "max")) != NULL) {
		if (!json_is_integer(value) || json_integer_value(value) < 1 ||
		    json_integer_value(value) > PROTO_NEXT_MAX_ITEMS)
			return problem_set(problem, WEFT_EBADFIELD, "max",
			                   "field 'max' must be an integer from 1 to %d: items in one "
			                   "reply",
			                   PROTO_NEXT_MAX_ITEMS);
		request->limit = (size_t)json_integer_value(value);
	}
	return decode_wait(root, request, problem);
}

static int decode_events(json_t *root, struct request *request, struct problem *problem)
{
	int rv;
	json_t *value = json_object_get(root, "after");
	if (value != NULL && !(json_is_string(value) &&
	                       events_parse_cursor(json_string_value(value), &request->after_epoch,
	                                           &request->after) == 0))
		return problem_set(problem, WEFT_EBADFIELD, "after",
		                   "field 'after' must be a cursor (\"EPOCH:SEQ\") from an earlier "
		                   "events reply; leave it out to read from the oldest event held");
	request->limit = PROTO_EVENTS_DEFAULT_LIMIT;
	if ((value = json_object_get(root, "limit")) != NULL) {
		if (!json_is_integer(value) || json_integer_value(value) < 1 ||
		    json_integer_value(value) > PROTO_EVENTS_MAX_LIMIT)
			return problem_set(problem, WEFT_EBADFIELD, "limit",
			                   "field 'limit' must be an integer from 1 to %d",
			                   PROTO_EVENTS_MAX_LIMIT);
		request->limit = (size_t)json_integer_value(value);
	}
	json_t *filter = json_object_get(root, "filter");
	if (filter != NULL) {
		static const char *const filter_fields[] = {"ids", "fn", "type", NULL};
		if (!json_is_object(filter))
			return problem_set(problem, WEFT_EBADFIELD, "filter",
			                   "field 'filter' must be an object with any of 'ids', 'fn', "
			                   "'type'");
		if ((rv = fields_check(filter, filter_fields, false, "filter", problem)) != WEFT_OK)
			return rv;
		if ((value = json_object_get(filter, "ids")) != NULL) {
			if (json_is_array(value) && json_array_size(value) > PROTO_EVENTS_MAX_IDS)
				return problem_set(problem, WEFT_EBADFIELD, "filter.ids",
				                   "field 'filter.ids' must be an array of 1 to %d job ids",
				                   PROTO_EVENTS_MAX_IDS);
			if ((rv = decode_ids(value, request, problem)) != WEFT_OK) {
				snprintf(problem->field, sizeof(problem->field), "filter.ids");
				return rv;
			}
		}
		if ((value = json_object_get(filter, "fn")) != NULL) {
			if (!json_is_string(value))
				return problem_set(problem, WEFT_EBADFIELD, "filter.fn",
				                   "field 'filter.fn' must be a function name");
			request->function = json_string_value(value);
		}
		if ((value = json_object_get(filter, "type")) != NULL) {
			const char *type = json_is_string(value) ? json_string_value(value) : "";
			if (strcmp(type, "job") == 0)
				request->event_type = 1;
			else if (strcmp(type, "queue") == 0)
				request->event_type = 2;
			else
				return problem_set(problem, WEFT_EBADFIELD, "filter.type",
				                   "field 'filter.type' must be \"job\" or \"queue\"");
		}
	}
	return decode_wait(root, request, problem);
}

static int decode_output(json_t *root, struct request *request, struct problem *problem)
{
	int rv = fields_id(json_object_get(root, "id"), "id", &request->id, problem);
	if (rv != WEFT_OK)
		return rv;
	json_t *value;
	request->output_stream = 2;
	if ((value = json_object_get(root, "stream")) != NULL) {
		const char *name = json_is_string(value) ? json_string_value(value) : "";
		if (strcmp(name, "stdout") == 0)
			request->output_stream = 0;
		else if (strcmp(name, "stderr") == 0)
			request->output_stream = 1;
		else if (strcmp(name, "both") != 0)
			return problem_set(problem, WEFT_EBADFIELD, "stream",
			                   "field 'stream' must be \"stdout\", \"stderr\" or \"both\"");
	}
	if ((value = json_object_get(root, "offset")) != NULL) {
		if (!json_is_integer(value))
			return problem_set(problem, WEFT_EBADFIELD, "offset",
			                   "field 'offset' must be an integer: a byte offset from the "
			                   "start (0, or the 'next' of the last reply), or -N for the "
			                   "last N bytes");
		request->output_offset = (int64_t)json_integer_value(value);
	}
	request->output_max = PROTO_OUTPUT_DEFAULT_MAX;
	if ((value = json_object_get(root, "max")) != NULL) {
		if (!json_is_integer(value) || json_integer_value(value) < 1 ||
		    json_integer_value(value) > PROTO_OUTPUT_MAX_MAX)
			return problem_set(problem, WEFT_EBADFIELD, "max",
			                   "field 'max' must be an integer from 1 to %d: the most "
			                   "bytes to return",
			                   PROTO_OUTPUT_MAX_MAX);
		request->output_max = (size_t)json_integer_value(value);
	}
	if ((value = json_object_get(root, "binary")) != NULL) {
		if (!json_is_boolean(value))
			return problem_set(problem, WEFT_EBADFIELD, "binary",
			                   "field 'binary' must be true (the bytes follow the reply's "
			                   "JSON and a NUL byte) or false (base64 in 'data')");
		request->output_binary = json_is_true(value);
	}
	if ((value = json_object_get(root, "wait")) != NULL) {
		if ((rv = fields_seconds(value, "wait", false, &request->wait, problem)) != WEFT_OK)
			return rv;
		if (request->wait > PROTO_OUTPUT_MAX_WAIT)
			return problem_set(problem, WEFT_EBADFIELD, "wait",
			                   "field 'wait' must be from 0 to %d seconds; ask again to "
			                   "wait longer",
			                   PROTO_OUTPUT_MAX_WAIT);
		request->has_wait = true;
	}
	return WEFT_OK;
}

static int decode_input(json_t *root, struct request *request, struct problem *problem)
{
	int rv = fields_id(json_object_get(root, "id"), "id", &request->id, problem);
	if (rv != WEFT_OK)
		return rv;
	json_t *value = json_object_get(root, "data");
	json_t *count = json_object_get(root, "bytes");
	if (request->input_borrowed) {
		/* The binary form: "bytes" says how many came after the NUL. */
		if (value != NULL)
			return problem_set(problem, WEFT_EBADFIELD, "data",
			                   "field 'data' cannot come with bytes after the JSON; "
			                   "send one or the other");
		if (count == NULL || !json_is_integer(count) || json_integer_value(count) < 0 ||
		    (uint64_t)json_integer_value(count) != request->input_length)
			return problem_set(problem, WEFT_EBADFIELD, "bytes",
			                   "field 'bytes' must count the bytes after the JSON and its "
			                   "NUL (%zu here)",
			                   request->input_length);
	} else if (count != NULL) {
		return problem_set(problem, WEFT_EBADFIELD, "bytes",
		                   "field 'bytes' counts the bytes after the JSON and a NUL byte, "
		                   "and this request has none; send the bytes there, or as 'data' "
		                   "in base64");
	} else if (value != NULL && request->input_data != NULL) {
		/* Taken out before parsing (take_input_data): "data" is "" now. */
		if (!json_is_string(value) || json_string_length(value) != 0)
			return problem_set(problem, WEFT_EBADFIELD, "data",
			                   "field 'data' must be the bytes in base64 (RFC 4648, padded)");
	} else if (value != NULL) {
		size_t length = json_is_string(value) ? json_string_length(value) : 1;
		unsigned char *bytes = memory_alloc(base64_decoded_max(length) + 1);
		if (!json_is_string(value) ||
		    !base64_decode(json_string_value(value), length, bytes, &request->input_length)) {
			free(bytes);
			return problem_set(problem, WEFT_EBADFIELD, "data",
			                   "field 'data' must be the bytes in base64 (RFC 4648, padded)");
		}
		request->input_data = bytes;
	}
	if ((value = json_object_get(root, "eof")) != NULL) {
		if (!json_is_boolean(value))
			return problem_set(problem, WEFT_EBADFIELD, "eof",
			                   "field 'eof' must be true (no more input) or false");
		request->input_eof = json_is_true(value);
	}
	return WEFT_OK;
}

/* `jobs` is as for decode_submit; NULL for other ops. */
static int decode_body(json_t *root, json_t *jobs, struct request *request,
                       struct problem *problem)
{
	int rv;
	json_t *value;
	switch (request->op) {
	case REQUEST_PING:
	case REQUEST_FUNCTIONS:
	case REQUEST_STATS:
		return WEFT_OK;
	case REQUEST_SUBMIT:
		return decode_submit(root, jobs, request, problem);
	case REQUEST_STATUS:
	case REQUEST_CANCEL:
		return fields_id(json_object_get(root, "id"), "id", &request->id, problem);
	case REQUEST_RESULT:
		if ((value = json_object_get(root, "ids")) != NULL) {
			if (json_object_get(root, "id") != NULL)
				return problem_set(problem, WEFT_EBADFIELD, "ids",
				                   "give either 'id' or 'ids', not both");
			rv = decode_ids(value, request, problem);
		} else {
			rv = fields_id(json_object_get(root, "id"), "id", &request->id, problem);
		}
		request->result_output = true;
		if (rv == WEFT_OK && (value = json_object_get(root, "output")) != NULL) {
			if (!json_is_boolean(value) || request->ids != NULL)
				return problem_set(problem, WEFT_EBADFIELD, "output",
				                   "field 'output' must be true or false, and goes with "
				                   "'id' (one job), not 'ids'");
			request->result_output = json_is_true(value);
		}
		return rv != WEFT_OK ? rv : decode_timeout(root, request, problem);
	case REQUEST_WAIT:
		if ((rv = decode_ids(json_object_get(root, "ids"), request, problem)) != WEFT_OK)
			return rv;
		if ((rv = decode_timeout(root, request, problem)) != WEFT_OK)
			return rv;
		request->return_when = REQUEST_ALL_COMPLETED;
		if ((value = json_object_get(root, "return_when")) != NULL) {
			const char *name = json_is_string(value) ? json_string_value(value) : "";
			if (strcmp(name, "FIRST_COMPLETED") == 0)
				request->return_when = REQUEST_FIRST_COMPLETED;
			else if (strcmp(name, "FIRST_EXCEPTION") == 0)
				request->return_when = REQUEST_FIRST_EXCEPTION;
			else if (strcmp(name, "ALL_COMPLETED") != 0)
				return problem_set(problem, WEFT_EBADFIELD, "return_when",
				                   "field 'return_when' must be \"FIRST_COMPLETED\", "
				                   "\"FIRST_EXCEPTION\" or \"ALL_COMPLETED\"");
		}
		return WEFT_OK;
	case REQUEST_LIST:
		request->state = -1;
		request->limit = REQUEST_DEFAULT_LIST;
		if ((value = json_object_get(root, "state")) != NULL) {
			enum job_state state;
			if (!json_is_string(value) || job_state_parse(json_string_value(value), &state) != 0)
				return problem_set(problem, WEFT_EBADFIELD, "state",
				                   "field 'state' must be one of waiting, queued, running, "
				                   "pending, done, failed, cancelled");
			request->state = (int)state;
		}
		if ((value = json_object_get(root, "fn")) != NULL) {
			if (!json_is_string(value))
				return problem_set(problem, WEFT_EBADFIELD, "fn",
				                   "field 'fn' must be a function name (a string)");
			request->function = json_string_value(value);
		}
		if ((value = json_object_get(root, "labels")) != NULL) {
			if ((rv = fields_labels(value, "labels", problem)) != WEFT_OK)
				return rv;
			request->labels = value;
		}
		if ((value = json_object_get(root, "after")) != NULL) {
			if (!json_is_integer(value) || json_integer_value(value) < 0)
				return problem_set(problem, WEFT_EBADFIELD, "after",
				                   "field 'after' must be a job id or 0");
			request->after = (uint64_t)json_integer_value(value);
		}
		if ((value = json_object_get(root, "before")) != NULL) {
			if (!json_is_integer(value) || json_integer_value(value) < 1)
				return problem_set(problem, WEFT_EBADFIELD, "before",
				                   "field 'before' must be a job id");
			request->before = (uint64_t)json_integer_value(value);
		}
		/* Newest first, as `ps` and `pueue status` show; paging on with
		 * `after` alone (the older form) keeps walking up. */
		request->newest_first = json_object_get(root, "after") == NULL ||
		                        json_object_get(root, "before") != NULL;
		if ((value = json_object_get(root, "order")) != NULL) {
			const char *order = json_is_string(value) ? json_string_value(value) : "";
			if (strcmp(order, "newest") != 0 && strcmp(order, "oldest") != 0)
				return problem_set(problem, WEFT_EBADFIELD, "order",
				                   "field 'order' must be \"newest\" or \"oldest\"");
			request->newest_first = strcmp(order, "newest") == 0;
		}
		if ((value = json_object_get(root, "limit")) != NULL) {
			if (!json_is_integer(value) || json_integer_value(value) < 1 ||
			    json_integer_value(value) > REQUEST_MAX_LIST)
				return problem_set(problem, WEFT_EBADFIELD, "limit",
				                   "field 'limit' must be an integer from 1 to %d",
				                   REQUEST_MAX_LIST);
			request->limit = (size_t)json_integer_value(value);
		}
		return WEFT_OK;
	case REQUEST_FUTURE_NEW:
		if ((value = json_object_get(root, "labels")) != NULL) {
			if ((rv = fields_labels(value, "labels", problem)) != WEFT_OK)
				return rv;
			request->labels = value;
		}
		return WEFT_OK;
	case REQUEST_FUTURE_SET:
		return decode_future_set(root, request, problem);
	case REQUEST_AS_COMPLETED:
		if ((rv = decode_ids(json_object_get(root, "ids"), request, problem)) != WEFT_OK)
			return rv;
		return decode_timeout(root, request, problem);
	case REQUEST_QUEUE_SET:
		value = json_object_get(root, "max");
		if (!json_is_integer(value) || json_integer_value(value) < 1 ||
		    json_integer_value(value) > 1000000)
			return problem_set(problem, WEFT_EBADFIELD, "max",
			                   "field 'max' must be an integer from 1 to 1000000: how many of "
			                   "the queue's jobs may run at once");
		request->limit = (size_t)json_integer_value(value);
		/* fall through */
	case REQUEST_QUEUE_PAUSE:
	case REQUEST_QUEUE_RESUME:
		value = json_object_get(root, "name");
		if (!json_is_string(value) || json_string_length(value) == 0 ||
		    json_string_length(value) > QUEUES_NAME_MAX)
			return problem_set(problem, WEFT_EBADFIELD, "name",
			                   "field 'name' must be a queue name of 1 to %d bytes",
			                   QUEUES_NAME_MAX);
		request->function = json_string_value(value); /* the name, borrowed */
		return WEFT_OK;
	case REQUEST_QUEUES:
		return WEFT_OK;
	case REQUEST_NEXT:
		return decode_next(root, request, problem);
	case REQUEST_EVENTS:
		return decode_events(root, request, problem);
	case REQUEST_OUTPUT:
		return decode_output(root, request, problem);
	case REQUEST_INPUT:
		return decode_input(root, request, problem);
	case REQUEST_OP_COUNT:
		break;
	}
	return problem_set(problem, WEFT_EINTERNAL, "op", "op without a decoder");
}

/*
 * An `input` request as libweft writes it ({"op":"input",...,"data":"..."})
 * carries up to --max-message bytes of base64, and the JSON parser would
 * look at each of them: the value is decoded here and the request parsed
 * with "data":"" instead. base64 holds no '"' or '\\', so the value ends at
 * the next '"'. Any other form goes the ordinary way. Returns the text to
 * parse (*copy: owned, NULL when it is `data` itself) or NULL when the value
 * is not base64 (problem filled).
 */
static const char *take_input_data(const char *data, size_t *size, char **copy,
                                   struct request *out, struct problem *problem)
{
	static const char prefix[] = "{\"op\":\"input\"", key[] = "\"data\":\"";
	*copy = NULL;
	if (*size < sizeof(prefix) || memcmp(data, prefix, sizeof(prefix) - 1) != 0)
		return data;
	const char *start = memmem(data, *size, key, sizeof(key) - 1);
	if (start == NULL)
		return data;
	start += sizeof(key) - 1;
	const char *end = memchr(start, '"', *size - (size_t)(start - data));
	if (end == NULL || end == start)
		return data;
	size_t length = (size_t)(end - start);
	unsigned char *bytes = memory_alloc(base64_decoded_max(length) + 1);
	if (!base64_decode(start, length, bytes, &out->input_length)) {
		free(bytes);
		problem_set(problem, WEFT_EBADFIELD, "data",
		            "field 'data' must be the bytes in base64 (RFC 4648, padded)");
		return NULL;
	}
	out->input_data = bytes;
	char *rest = memory_alloc(*size - length);
	memcpy(rest, data, (size_t)(start - data));
	memcpy(rest + (start - data), end, *size - (size_t)(end - data));
	*size -= length;
	*copy = rest;
	return rest;
}

static int decode(const void *data, size_t size, struct request *out, struct problem *problem);

/* Out of memory while decoding, the request is refused and the daemon goes
 * on (memory.h): everything below runs in a refusable region. */
int request_decode(const void *data, size_t size, struct request *out, struct problem *problem)
{
	memory_refusable_begin();
	int rv = decode(data, size, out, problem);
	bool failed = memory_refusable_end();
	if (rv == WEFT_OK && failed) {
		/* A value that could not be made was dropped somewhere: refuse. */
		request_clear(out);
		rv = no_memory(problem);
	} else if (rv != WEFT_OK && failed && rv != WEFT_ENOMEM) {
		rv = no_memory(problem);
	}
	return rv;
}

static int decode(const void *data, size_t size, struct request *out, struct problem *problem)
{
	memset(out, 0, sizeof(*out));
	/* JSON text holds no raw NUL: one ends the JSON of a binary input, and
	 * the bytes follow it as they are. */
	const char *nul = memchr(data, '\0', size);
	if (nul != NULL) {
		size_t json_size = (size_t)(nul - (const char *)data);
		out->input_data = (unsigned char *)(uintptr_t)(nul + 1);
		out->input_length = size - json_size - 1;
		out->input_borrowed = true;
		size = json_size;
	}
	char *copy = NULL;
	const char *text = out->input_borrowed ? data : take_input_data(data, &size, &copy, out,
	                                                                problem);
	if (text == NULL)
		return problem->code;
	json_error_t error;
	json_t *root = json_loadb(text, size, JSON_REJECT_DUPLICATES, &error);
	free(copy);
	if (root == NULL && json_error_code(&error) == json_error_out_of_memory) {
		request_clear(out);
		return no_memory(problem);
	}
	if (root == NULL) {
		request_clear(out);
		return problem_set(problem, WEFT_EMALFORMED, NULL,
		                   "request is not valid JSON: %s (byte %d)", error.text, error.position);
	}
	out->root = root;
	int rv;
	if (!json_is_object(root)) {
		rv = problem_set(problem, WEFT_EMALFORMED, NULL,
		                 "request must be a JSON object like {\"op\": \"ping\"}");
		goto fail;
	}
	json_t *op = json_object_get(root, "op");
	if (op == NULL || !json_is_string(op)) {
		rv = problem_set(problem, WEFT_EBADFIELD, "op",
		                 "field 'op' must be a string naming the operation, like \"ping\"");
		goto fail;
	}
	out->op = REQUEST_OP_COUNT;
	for (int i = 0; i < REQUEST_OP_COUNT; i++) {
		if (strcmp(op_names[i], json_string_value(op)) == 0) {
			out->op = (enum request_op)i;
			break;
		}
	}
	if (out->op == REQUEST_OP_COUNT) {
		rv = problem_set(problem, WEFT_EUNKNOWNOP, "op",
		                 "unknown op '%.64s'; ops are ping, submit, status, result, wait, "
		                 "cancel, list, functions, stats, future.new, future.set, as_completed, "
		                 "queue.set, queue.pause, queue.resume, queues, next, events, output, "
		                 "input",
		                 json_string_value(op));
		goto fail;
	}
	if (out->input_borrowed && out->op != REQUEST_INPUT) {
		rv = problem_set(problem, WEFT_EMALFORMED, NULL,
		                 "only 'input' carries bytes after its JSON (a NUL byte ended "
		                 "this request's JSON)");
		goto fail;
	}
	json_t *jobs = out->op == REQUEST_SUBMIT ? json_object_get(root, "jobs") : NULL;
	if (out->op != REQUEST_SUBMIT || jobs != NULL) {
		char what[32];
		snprintf(what, sizeof(what), "op '%s'", op_names[out->op]);
		if ((rv = fields_check(root, op_fields[out->op], true, what, problem)) != WEFT_OK)
			goto fail;
	}
	if ((rv = decode_body(root, jobs, out, problem)) != WEFT_OK)
		goto fail;
	return WEFT_OK;

fail:
	request_clear(out);
	return rv;
}

void request_clear(struct request *request)
{
	for (size_t i = 0; i < request->job_count; i++)
		jobspec_clear(&request->jobs[i]);
	free(request->jobs);
	free(request->ids);
	if (!request->input_borrowed)
		free(request->input_data);
	json_decref(request->root);
	memset(request, 0, sizeof(*request));
}
