/* See writer.h. */
#include "daemon/base/writer.h"

#include <stdio.h>
#include <string.h>

int writer_append_callback(const char *buffer, size_t size, void *data)
{
	nng_msg *message = data;
	size_t needed = nng_msg_len(message) + size;
	size_t capacity = nng_msg_capacity(message);
	if (needed > capacity &&
	    nng_msg_reserve(message, needed > 2 * capacity ? needed : 2 * capacity) != 0)
		return -1;
	return nng_msg_append(message, buffer, size) == 0 ? 0 : -1;
}

void writer_init(struct writer *writer, size_t expected)
{
	writer->failed = nng_msg_alloc(&writer->message, 0) != 0 ||
	                 nng_msg_reserve(writer->message, expected > 64 ? expected : 64) != 0;
}

void writer_bytes(struct writer *writer, const char *bytes, size_t size)
{
	if (!writer->failed && writer_append_callback(bytes, size, writer->message) != 0)
		writer->failed = true;
}

void writer_text(struct writer *writer, const char *text)
{
	writer_bytes(writer, text, strlen(text));
}

void writer_unsigned(struct writer *writer, uint64_t value)
{
	char digits[24];
	int length = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)value);
	writer_bytes(writer, digits, (size_t)length);
}

void writer_json(struct writer *writer, const json_t *value)
{
	if (!writer->failed &&
	    json_dump_callback(value, writer_append_callback, writer->message, WRITER_JSON_FLAGS) != 0)
		writer->failed = true;
}

nng_msg *writer_finish(struct writer *writer)
{
	if (writer->message != NULL && writer->failed) {
		nng_msg_free(writer->message);
		writer->message = NULL;
	}
	nng_msg *message = writer->failed ? NULL : writer->message;
	writer->message = NULL;
	return message;
}
