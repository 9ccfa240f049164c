/*
 * The `output` op: an exec job's output as bytes (weft/client.h). The reply
 * carries the bytes in base64 (proto/base64.h); this decodes them.
 */
#include <string.h>

#include "client/allocator.h"
#include "client/connection.h"
#include "client/last_error.h"
#include "proto/base64.h"
#include "proto/proto.h"

static const char *const stream_names[] = {"stdout", "stderr", "both"};

void weft_output_free(weft_output *output)
{
	if (output == NULL)
		return;
	allocator_free(output->data);
	allocator_free(output->runs);
	allocator_free(output);
}

static bool read_count(const json_t *reply, const char *key, uint64_t *out)
{
	const json_t *value = json_object_get(reply, key);
	if (!json_is_integer(value) || json_integer_value(value) < 0)
		return false;
	*out = (uint64_t)json_integer_value(value);
	return true;
}

/* Fills output from the reply (borrowed). */
static int decode_reply(const json_t *reply, weft_stream stream, weft_output *output)
{
	const json_t *data = json_object_get(reply, "data");
	if (!json_is_string(data) || !read_count(reply, "offset", &output->offset) ||
	    !read_count(reply, "next", &output->next) || !read_count(reply, "lost", &output->lost))
		return connection_bad_reply("output", "data, offset, next and lost");
	output->eof = json_is_true(json_object_get(reply, "eof"));
	output->started = json_is_true(json_object_get(reply, "started"));
	size_t text_length = json_string_length(data);
	if (text_length > 0) {
		output->data = allocator_alloc(base64_decoded_max(text_length));
		if (output->data == NULL)
			return last_error_set(WEFT_ENOMEM, "out of memory for %zu bytes of output",
			                      text_length);
		if (!base64_decode(json_string_value(data), text_length, output->data,
		                   &output->length))
			return connection_bad_reply("output", "data in base64");
	}
	if (output->next - output->offset != output->length)
		return connection_bad_reply("output", "as many bytes as next - offset");
	if (stream != WEFT_STREAM_BOTH)
		return WEFT_OK;
	const json_t *runs = json_object_get(reply, "runs");
	if (!json_is_array(runs))
		return connection_bad_reply("output", "runs");
	size_t count = json_array_size(runs), sum = 0;
	if (count > 0) {
		output->runs = allocator_calloc(count, sizeof(*output->runs));
		if (output->runs == NULL)
			return last_error_set(WEFT_ENOMEM, "out of memory for the output's runs");
	}
	for (size_t i = 0; i < count; i++) {
		const json_t *run = json_array_get(runs, i);
		const json_t *which = json_array_get(run, 0), *length = json_array_get(run, 1);
		if (!json_is_integer(which) || json_integer_value(which) < 0 ||
		    json_integer_value(which) > 1 || !json_is_integer(length) ||
		    json_integer_value(length) < 1)
			return connection_bad_reply("output", "runs of [stream, length]");
		output->runs[i].stream = (weft_stream)json_integer_value(which);
		output->runs[i].length = (size_t)json_integer_value(length);
		sum += output->runs[i].length;
	}
	output->run_count = count;
	if (sum != output->length)
		return connection_bad_reply("output", "runs that add up to the data");
	return WEFT_OK;
}

int weft_output_read(weft_client *client, uint64_t id, weft_stream stream, int64_t offset,
                     size_t max, double wait, weft_output **out)
{
	last_error_clear();
	int rv = connection_check_id(id);
	if (rv != WEFT_OK)
		return rv;
	if (out == NULL || (int)stream < 0 || stream > WEFT_STREAM_BOTH)
		return last_error_set(WEFT_EINVAL, "weft_output_read needs a stream and somewhere to "
		                                   "put the output");
	if (!(wait >= 0) || wait > PROTO_OUTPUT_MAX_WAIT)
		return last_error_set(WEFT_EINVAL, "wait must be from 0 to %d seconds",
		                      PROTO_OUTPUT_MAX_WAIT);
	if (max > PROTO_OUTPUT_MAX_MAX)
		max = PROTO_OUTPUT_MAX_MAX;
	json_t *request = json_pack("{s:s, s:I, s:s, s:I, s:f}", "op", "output", "id",
	                            (json_int_t)id, "stream", stream_names[stream], "offset",
	                            (json_int_t)offset, "wait", wait);
	if (request != NULL && max > 0)
		json_object_set_new(request, "max", json_integer((json_int_t)max));
	json_t *reply = NULL;
	if ((rv = connection_op(client, request, wait, &reply)) != WEFT_OK)
		return rv;
	weft_output *output = allocator_calloc(1, sizeof(*output));
	if (output == NULL) {
		json_decref(reply);
		return last_error_set(WEFT_ENOMEM, "out of memory for the output");
	}
	rv = decode_reply(reply, stream, output);
	json_decref(reply);
	if (rv != WEFT_OK) {
		weft_output_free(output);
		return rv;
	}
	*out = output;
	return WEFT_OK;
}
