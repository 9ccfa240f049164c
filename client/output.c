/*
 * The `output` op: an exec job's output as bytes (weft/client.h). This asks
 * for them "binary": after the reply's JSON and a NUL byte, as they are. A
 * reply with base64 "data" (proto/base64.h) is read too.
 */
#include <stdio.h>
#include <string.h>

#include "client/allocator.h"
#include "client/async.h"
#include "client/connection.h"
#include "client/last_error.h"
#include "proto/base64.h"
#include "proto/proto.h"

static const char *const stream_names[] = {"stdout", "stderr", "both"};

/* What weft_output_read hands out: the output, and the reply its bytes
 * point into when they came binary (then data is not allocator_'s). */
struct output_owned {
	weft_output output; /* first: the caller's pointer is this */
	nng_msg *message;   /* owned, or NULL */
};

void weft_output_free(weft_output *output)
{
	if (output == NULL)
		return;
	struct output_owned *owned = (struct output_owned *)output;
	if (owned->message != NULL)
		nng_msg_free(owned->message);
	else
		allocator_free(output->data);
	allocator_free(output->runs);
	allocator_free(owned);
}

/* Takes the bytes out of an output reply and leaves the JSON alone for the
 * parser. Binary: the bytes follow the JSON's first NUL (JSON text has
 * none); the reply is kept as it is, call->bytes pointing into it, and the
 * parser gets a copy of the JSON. Otherwise they are the base64 "data",
 * decoded into call->bytes, which weftd writes once, at the top level;
 * base64 has no '"' or '\\', so the value ends at the next '"', and "data":""
 * is left. A reply with neither (an error) is left alone. */
static int take_data(weft_call *call, nng_msg **message_in_out)
{
	static const char key[] = "\"data\":\"";
	nng_msg *message = *message_in_out;
	char *body = nng_msg_body(message);
	size_t size = nng_msg_len(message);
	char *nul = memchr(body, '\0', size);
	if (nul != NULL) {
		size_t header = (size_t)(nul - body);
		nng_msg *json;
		if (nng_msg_alloc(&json, header) != 0)
			return last_error_set(WEFT_ENOMEM, "out of memory for a reply's %zu bytes",
			                      header);
		memcpy(nng_msg_body(json), body, header);
		call->kept = message;
		call->bytes = (unsigned char *)nul + 1;
		call->byte_count = size - header - 1;
		call->binary = true;
		*message_in_out = json;
		return WEFT_OK;
	}
	char *start = memmem(body, size, key, sizeof(key) - 1);
	if (start == NULL)
		return WEFT_OK;
	start += sizeof(key) - 1;
	char *end = memchr(start, '"', size - (size_t)(start - body));
	if (end == NULL)
		return last_error_set(WEFT_EPROTO, "weftd's reply to 'output' has unended data");
	size_t length = (size_t)(end - start);
	if (length == 0)
		return WEFT_OK;
	call->bytes = allocator_alloc(base64_decoded_max(length));
	if (call->bytes == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory for %zu bytes of output", length);
	if (!base64_decode(start, length, call->bytes, &call->byte_count))
		return last_error_set(WEFT_EPROTO, "weftd's reply to 'output' has data that is not "
		                                   "base64");
	memmove(start, end, size - (size_t)(end - body));
	nng_msg_chop(message, length);
	return WEFT_OK;
}

static const struct async_op output_op = {.name = "output", .take = take_data};

static bool read_count(const json_t *reply, const char *key, uint64_t *out)
{
	const json_t *value = json_object_get(reply, key);
	if (!json_is_integer(value) || json_integer_value(value) < 0)
		return false;
	*out = (uint64_t)json_integer_value(value);
	return true;
}

/* Fills output from the reply (borrowed); data: the bytes (taken), which
 * came after the JSON when binary. */
static int decode_reply(const json_t *reply, weft_stream stream, unsigned char *data,
                        size_t length, bool binary, weft_output *output)
{
	output->data = data;
	output->length = length;
	uint64_t bytes = 0;
	if (binary ? !read_count(reply, "bytes", &bytes) || bytes != length
	           : !json_is_string(json_object_get(reply, "data")))
		return connection_bad_reply("output", binary ? "as many bytes after it as 'bytes' says"
		                                             : "data");
	if (!read_count(reply, "offset", &output->offset) ||
	    !read_count(reply, "next", &output->next) || !read_count(reply, "lost", &output->lost))
		return connection_bad_reply("output", "offset, next and lost");
	output->eof = json_is_true(json_object_get(reply, "eof"));
	output->started = json_is_true(json_object_get(reply, "started"));
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
		const json_t *which = json_array_get(run, 0), *size = json_array_get(run, 1);
		if (!json_is_integer(which) || json_integer_value(which) < 0 ||
		    json_integer_value(which) > 1 || !json_is_integer(size) ||
		    json_integer_value(size) < 1)
			return connection_bad_reply("output", "runs of [stream, length]");
		output->runs[i].stream = (weft_stream)json_integer_value(which);
		output->runs[i].length = (size_t)json_integer_value(size);
		sum += output->runs[i].length;
	}
	output->run_count = count;
	if (sum != output->length)
		return connection_bad_reply("output", "runs that add up to the data");
	return WEFT_OK;
}

static int output_read(weft_client *client, uint64_t id, weft_stream stream, int64_t offset,
                       size_t max, double wait, bool binary, weft_output **out)
{
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
	if (request != NULL && binary)
		json_object_set_new(request, "binary", json_true());
	if (request != NULL && max > 0)
		json_object_set_new(request, "max", json_integer((json_int_t)max));
	if (request == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory building a request");
	weft_call *call = NULL;
	if ((rv = async_call_new(client, &output_op, NULL, &call)) != WEFT_OK) {
		json_decref(request);
		return rv;
	}
	if ((rv = async_call_set_request_json(call, request, wait)) != WEFT_OK) {
		weft_call_free(call);
		return rv;
	}
	if ((rv = async_call_start(call, NULL)) != WEFT_OK)
		return rv; /* the call is freed */
	if ((rv = async_call_wait(call)) != WEFT_OK) {
		weft_call_free(call);
		return rv;
	}
	struct output_owned *owned = allocator_calloc(1, sizeof(*owned));
	if (owned == NULL) {
		weft_call_free(call);
		return last_error_set(WEFT_ENOMEM, "out of memory for the output");
	}
	weft_output *output = &owned->output;
	rv = decode_reply(call->reply, stream, call->byte_count > 0 ? call->bytes : NULL,
	                  call->byte_count, call->binary, output);
	if (call->byte_count == 0 && call->kept == NULL)
		allocator_free(call->bytes);
	owned->message = call->kept; /* the output's now, with the bytes */
	call->kept = NULL;
	call->bytes = NULL;
	weft_call_free(call);
	if (rv != WEFT_OK) {
		weft_output_free(output);
		return rv;
	}
	*out = output;
	return WEFT_OK;
}

int weft_output_read(weft_client *client, uint64_t id, weft_stream stream, int64_t offset,
                     size_t max, double wait, weft_output **out)
{
	last_error_clear();
	int rv = output_read(client, id, stream, offset, max, wait, true, out);
	/* A weftd from before "binary" refuses the field: base64 then. */
	if (rv != WEFT_OK && strcmp(weft_last_error()->wire_code, "unknown_field") == 0 &&
	    strcmp(weft_last_error()->field, "binary") == 0) {
		last_error_clear();
		rv = output_read(client, id, stream, offset, max, wait, false, out);
	}
	return rv;
}

/* One input request: the bytes after the JSON and a NUL as they are
 * (binary), or in base64 in its "data". *reply: the reply, whatever its "ok". */
static int input_round_trip(weft_client *client, uint64_t id, const void *data, size_t length,
                            bool eof, bool binary, json_t **reply)
{
	if (binary) {
		/* "id" first: a weftd from before the binary form then parses the
		 * whole message as JSON and refuses it as malformed (its shortcut
		 * for libweft's base64 form looks for a request that starts with
		 * "op"). */
		char head[128];
		int head_length = snprintf(head, sizeof(head),
		                           "{\"id\":%llu,\"op\":\"input\",\"eof\":%s,\"bytes\":%zu}",
		                           (unsigned long long)id, eof ? "true" : "false", length);
		/* With its NUL: snprintf wrote one after the JSON. */
		return connection_round_trip_parts(client, head, (size_t)head_length + 1, data, length,
		                                   0, reply);
	}
	/* Written by hand: the JSON encoder would look at every base64 byte. */
	static const char tail[] = "\"}";
	char head[96];
	int head_length = snprintf(head, sizeof(head),
	                           "{\"op\":\"input\",\"id\":%llu,\"eof\":%s,\"data\":\"",
	                           (unsigned long long)id, eof ? "true" : "false");
	size_t size = base64_encoded_size(length);
	size_t total = (size_t)head_length + size + sizeof(tail) - 1;
	char *text = allocator_alloc(total);
	if (text == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory for %zu bytes of input", length);
	memcpy(text, head, (size_t)head_length);
	base64_encode(data, length, text + head_length);
	memcpy(text + head_length + size, tail, sizeof(tail) - 1);
	int rv = connection_round_trip(client, text, total, 0, reply);
	allocator_free(text);
	return rv;
}

int weft_input_write(weft_client *client, uint64_t id, const void *data, size_t length, bool eof,
                     size_t *accepted, bool *started, bool *closed)
{
	last_error_clear();
	int rv = connection_check_id(id);
	if (rv != WEFT_OK)
		return rv;
	if (accepted == NULL || started == NULL || closed == NULL || (data == NULL && length > 0))
		return last_error_set(WEFT_EINVAL, "weft_input_write needs the bytes and somewhere "
		                                   "to put accepted, started and closed");
	json_t *reply = NULL;
	rv = input_round_trip(client, id, data, length, eof, true, &reply);
	/* A weftd from before the binary form: base64 then. */
	if (rv == WEFT_OK && !json_is_true(json_object_get(reply, "ok")) &&
	    json_is_string(json_object_get(json_object_get(reply, "error"), "code")) &&
	    strcmp(json_string_value(json_object_get(json_object_get(reply, "error"), "code")),
	           "malformed_json") == 0) {
		json_decref(reply);
		reply = NULL;
		rv = input_round_trip(client, id, data, length, eof, false, &reply);
	}
	if (rv != WEFT_OK)
		return rv;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		rv = last_error_set_from_reply(reply);
		json_decref(reply);
		return rv;
	}
	uint64_t taken = 0;
	if (!read_count(reply, "accepted", &taken) || taken > length) {
		json_decref(reply);
		return connection_bad_reply("input", "how many bytes were accepted");
	}
	*accepted = (size_t)taken;
	*started = json_is_true(json_object_get(reply, "started"));
	*closed = json_is_true(json_object_get(reply, "closed"));
	json_decref(reply);
	return WEFT_OK;
}
