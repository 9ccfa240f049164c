/* The error table's lookups: compiled into both libweft and weftd. */
#include <string.h>

#include "weft/error.h"

#define WEFT_ERROR_CODE_(name, code, message) code,
static const char *const error_codes[] = {WEFT_ERROR_MAP(WEFT_ERROR_CODE_)};
#undef WEFT_ERROR_CODE_

#define WEFT_ERROR_MESSAGE_(name, code, message) message,
static const char *const error_messages[] = {WEFT_ERROR_MAP(WEFT_ERROR_MESSAGE_)};
#undef WEFT_ERROR_MESSAGE_

const char *weft_strerror(int error)
{
	if (error < 0 || error >= WEFT_ERROR_COUNT_)
		return "unknown error";
	return error_messages[error];
}

const char *weft_error_code(int error)
{
	if (error < 0 || error >= WEFT_ERROR_COUNT_)
		return error_codes[WEFT_EINTERNAL];
	return error_codes[error];
}

int weft_error_from_code(const char *code)
{
	if (code == NULL)
		return WEFT_EINTERNAL;
	for (int i = 0; i < WEFT_ERROR_COUNT_; i++)
		if (strcmp(error_codes[i], code) == 0)
			return i;
	return WEFT_EINTERNAL;
}
