/* The assertion the libweft tests share: a call's error code, named, with
 * libweft's own message when it is not the one expected. */
#ifndef TESTS_WEFT_ASSERT_H
#define TESTS_WEFT_ASSERT_H

#include <check.h>

#include "weft/weft.h"

#define assert_weft(expression, expected)                                                  \
	do {                                                                               \
		int actual_ = (expression);                                                \
		ck_assert_msg(actual_ == (expected), "%s gave %s (%s), wanted %s", #expression, \
		              weft_error_code(actual_), weft_last_error()->message,        \
		              weft_error_code(expected));                                  \
	} while (0)

#endif
