/* The calling thread's last error; see last_error.h. */
#include "client/last_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "weft/client.h"

/* One record per thread: calls in different threads never see each other's
 * errors, and no lock is needed. */
static _Thread_local weft_error_info last_error_record = {.index = -1};

const weft_error_info *weft_last_error(void)
{
	return &last_error_record;
}

void last_error_clear(void)
{
	weft_error_info *record = &last_error_record;
	record->code = WEFT_OK;
	record->wire_code[0] = '\0';
	record->message[0] = '\0';
	record->field[0] = '\0';
	record->index = -1;
	record->id = 0;
	record->state[0] = '\0';
}

static void copy_text(char *destination, size_t size, const char *text)
{
	snprintf(destination, size, "%s", text != NULL ? text : "");
}

int last_error_set(int code, const char *format, ...)
{
	last_error_clear();
	weft_error_info *record = &last_error_record;
	record->code = code;
	copy_text(record->wire_code, sizeof(record->wire_code), weft_error_code(code));
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(record->message, sizeof(record->message), format, arguments);
	va_end(arguments);
	return code;
}

int last_error_set_from_reply(const json_t *reply)
{
	json_t *error = json_object_get(reply, "error");
	const char *code_name = json_string_value(json_object_get(error, "code"));
	if (!json_is_object(error) || code_name == NULL)
		return last_error_set(WEFT_EPROTO,
		                      "weftd answered ok=false without an error code; "
		                      "is the URL a weftd of the same protocol version?");
	int code = weft_error_from_code(code_name);
	/* "ok" is never an error: a daemon saying so is broken. */
	if (code == WEFT_OK)
		code = WEFT_EPROTO;
	const char *message = json_string_value(json_object_get(error, "message"));
	if (message == NULL)
		message = weft_strerror(code);
	last_error_set(code, "%s", message);
	weft_error_info *record = &last_error_record;
	copy_text(record->wire_code, sizeof(record->wire_code), code_name);
	copy_text(record->field, sizeof(record->field),
	          json_string_value(json_object_get(error, "field")));
	json_t *index = json_object_get(error, "index");
	if (json_is_integer(index) && json_integer_value(index) >= 0)
		record->index = json_integer_value(index);
	json_t *id = json_object_get(error, "id");
	if (json_is_integer(id) && json_integer_value(id) > 0)
		record->id = (uint64_t)json_integer_value(id);
	/* The protocol documents "state" inside "error"; accept it beside it too. */
	const char *state = json_string_value(json_object_get(error, "state"));
	if (state == NULL)
		state = json_string_value(json_object_get(reply, "state"));
	copy_text(record->state, sizeof(record->state), state);
	return code;
}

void last_error_set_id(unsigned long long id)
{
	if (last_error_record.id == 0)
		last_error_record.id = id;
}

void last_error_restore(const weft_error_info *info)
{
	last_error_record = *info;
}
