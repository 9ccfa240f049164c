/*
 * Talking to a test's weftd through raw nng REQ sockets, without libweft, so
 * daemon tests see exactly what goes over the wire. Every call opens its own
 * connection. Test threads only (they fail the test on a missing reply).
 */
#include "tests/wire.h"

#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fixture.h"

char *wire_call_raw(const char *url, const char *text, size_t size, int timeout_ms,
                    size_t *length)
{
	nng_socket socket;
	ck_assert_int_eq(nng_req0_open(&socket), 0);
	nng_socket_set_ms(socket, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(socket, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(socket, NNG_OPT_SENDTIMEO, timeout_ms);
	char *buffer = NULL, *copy = NULL;
	*length = 0;
	if (nng_dial(socket, url, NULL, 0) == 0 && nng_send(socket, (void *)text, size, 0) == 0 &&
	    nng_recv(socket, &buffer, length, NNG_FLAG_ALLOC) == 0) {
		copy = malloc(*length + 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, buffer, *length);
		copy[*length] = '\0';
		nng_free(buffer, *length);
	}
	nng_close(socket);
	return copy;
}

/* Sends one request on a fresh connection and returns the parsed reply, or NULL
 * when none came within timeout_ms. */
json_t *wire_call_text(const char *url, const char *text, size_t size, int timeout_ms)
{
	size_t length = 0;
	char *buffer = wire_call_raw(url, text, size, timeout_ms, &length);
	json_t *reply = buffer != NULL ? json_loadb(buffer, length, 0, NULL) : NULL;
	free(buffer);
	return reply;
}

json_t *wire_call(const char *url, const char *text)
{
	json_t *reply = wire_call_text(url, text, strlen(text), 10000);
	ck_assert_msg(reply != NULL, "no reply to %s", text);
	return reply;
}

const char *wire_error_code(json_t *reply)
{
	return json_string_value(json_object_get(json_object_get(reply, "error"), "code"));
}

/* Pings until one answers within a second, for at most `seconds`. */
bool wire_answers_within(const char *url, double seconds)
{
	double deadline = fixture_now() + seconds;
	while (fixture_now() < deadline) {
		json_t *reply = wire_call_text(url, "{\"op\":\"ping\"}", 13, 1000);
		bool ok = reply != NULL && json_is_true(json_object_get(reply, "ok"));
		json_decref(reply);
		if (ok)
			return true;
	}
	return false;
}

json_int_t wire_waiters_now(const char *url)
{
	json_t *stats = wire_call(url, "{\"op\":\"stats\"}");
	json_int_t waiting = json_integer_value(json_object_get(stats, "waiters"));
	json_decref(stats);
	return waiting;
}

json_t *wire_callf(const char *url, const char *format, ...)
{
	static char request[1 << 18];
	va_list list;
	va_start(list, format);
	vsnprintf(request, sizeof(request), format, list);
	va_end(list);
	return wire_call(url, request);
}

json_t *wire_results(const char *url, const json_t *ids)
{
	char *text = json_dumps(ids, JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	size_t size = strlen(text) + 64;
	char *request = malloc(size);
	ck_assert_ptr_nonnull(request);
	snprintf(request, size, "{\"op\":\"result\",\"ids\":%s,\"timeout\":60}", text);
	free(text);
	json_t *reply = wire_call_text(url, request, strlen(request), 70000);
	free(request);
	ck_assert_msg(reply != NULL, "no reply to result within 70 s");
	ck_assert_uint_eq(json_array_size(json_object_get(reply, "results")), json_array_size(ids));
	return reply;
}

const char *wire_text(const json_t *object, const char *name)
{
	return json_string_value(json_object_get(object, name));
}

const char *wire_error_type(const json_t *reply)
{
	return wire_text(json_object_get(reply, "error"), "type");
}
