/* See problem.h. */
#include "daemon/base/problem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void problem_init(struct problem *problem)
{
	memset(problem, 0, sizeof(*problem));
	problem->index = -1;
}

int problem_set(struct problem *problem, int code, const char *field, const char *format, ...)
{
	problem->code = code;
	snprintf(problem->field, sizeof(problem->field), "%s", field != NULL ? field : "");
	va_list args;
	va_start(args, format);
	vsnprintf(problem->message, sizeof(problem->message), format, args);
	va_end(args);
	return code;
}

void problem_in_batch(struct problem *problem, long index)
{
	char buffer[sizeof(problem->message)];
	problem->index = index;
	snprintf(buffer, sizeof(buffer), "jobs[%ld]: %s", index, problem->message);
	memcpy(problem->message, buffer, sizeof(buffer));
	char field[sizeof(problem->field)];
	if (problem->field[0] != '\0')
		snprintf(field, sizeof(field), "jobs[%ld].%s", index, problem->field);
	else
		snprintf(field, sizeof(field), "jobs[%ld]", index);
	memcpy(problem->field, field, sizeof(field));
}

json_t *problem_to_reply(const struct problem *problem)
{
	json_t *error = json_pack("{s:s, s:s}", "code", weft_error_code(problem->code), "message",
	                          problem->message[0] != '\0' ? problem->message
	                                                      : weft_strerror(problem->code));
	if (error == NULL)
		return NULL;
	if (problem->field[0] != '\0')
		json_object_set_new(error, "field", json_string(problem->field));
	if (problem->index >= 0)
		json_object_set_new(error, "index", json_integer(problem->index));
	if (problem->id != 0)
		json_object_set_new(error, "id", json_integer((json_int_t)problem->id));
	if (problem->state != NULL)
		json_object_set_new(error, "state", json_string(problem->state));
	return json_pack("{s:b, s:o}", "ok", 0, "error", error);
}
