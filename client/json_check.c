/* A non-allocating JSON syntax check; see json_check.h. */
#include "client/json_check.h"

#include <string.h>

#include "client/job_spec.h"

/* jansson's default depth limit. */
#define JSON_CHECK_MAX_DEPTH 2048

typedef struct json_check_cursor {
	const unsigned char *at;
	const unsigned char *end;
} json_check_cursor;

static void skip_space(json_check_cursor *cursor)
{
	while (cursor->at < cursor->end &&
	       (*cursor->at == ' ' || *cursor->at == '\t' || *cursor->at == '\n' ||
	        *cursor->at == '\r'))
		cursor->at++;
}

static bool take(json_check_cursor *cursor, char expected)
{
	if (cursor->at < cursor->end && *cursor->at == (unsigned char)expected) {
		cursor->at++;
		return true;
	}
	return false;
}

static bool take_word(json_check_cursor *cursor, const char *word)
{
	size_t length = strlen(word);
	if ((size_t)(cursor->end - cursor->at) < length || memcmp(cursor->at, word, length) != 0)
		return false;
	cursor->at += length;
	return true;
}

static bool is_digit(json_check_cursor *cursor)
{
	return cursor->at < cursor->end && *cursor->at >= '0' && *cursor->at <= '9';
}

static bool check_number(json_check_cursor *cursor)
{
	take(cursor, '-');
	if (take(cursor, '0')) {
		/* no leading zeros */
	} else if (is_digit(cursor)) {
		while (is_digit(cursor))
			cursor->at++;
	} else {
		return false;
	}
	if (take(cursor, '.')) {
		if (!is_digit(cursor))
			return false;
		while (is_digit(cursor))
			cursor->at++;
	}
	if (take(cursor, 'e') || take(cursor, 'E')) {
		if (!take(cursor, '+'))
			take(cursor, '-');
		if (!is_digit(cursor))
			return false;
		while (is_digit(cursor))
			cursor->at++;
	}
	return true;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool take_hex4(json_check_cursor *cursor, unsigned *value)
{
	if (cursor->end - cursor->at < 4)
		return false;
	*value = 0;
	for (int i = 0; i < 4; i++) {
		int digit = hex_value(cursor->at[i]);
		if (digit < 0)
			return false;
		*value = *value << 4 | (unsigned)digit;
	}
	cursor->at += 4;
	return true;
}

static bool check_string(json_check_cursor *cursor)
{
	if (!take(cursor, '"'))
		return false;
	const unsigned char *run = cursor->at;
	while (cursor->at < cursor->end) {
		unsigned char c = *cursor->at;
		if (c == '"') {
			bool valid = job_spec_is_utf8((const char *)run, (size_t)(cursor->at - run));
			cursor->at++;
			return valid;
		}
		if (c < 0x20)
			return false;
		if (c != '\\') {
			cursor->at++;
			continue;
		}
		if (!job_spec_is_utf8((const char *)run, (size_t)(cursor->at - run)))
			return false;
		cursor->at++;
		if (cursor->at >= cursor->end)
			return false;
		c = *cursor->at++;
		if (c == 'u') {
			unsigned unit;
			if (!take_hex4(cursor, &unit) || unit == 0)
				return false;
			if (unit >= 0xD800 && unit <= 0xDBFF) {
				unsigned low;
				if (!take_word(cursor, "\\u") || !take_hex4(cursor, &low) ||
				    low < 0xDC00 || low > 0xDFFF)
					return false;
			} else if (unit >= 0xDC00 && unit <= 0xDFFF) {
				return false;
			}
		} else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
			return false;
		}
		run = cursor->at;
	}
	return false;
}

static bool check_value(json_check_cursor *cursor, int depth);

static bool check_container(json_check_cursor *cursor, int depth, char close, bool is_object)
{
	if (depth > JSON_CHECK_MAX_DEPTH)
		return false;
	skip_space(cursor);
	if (take(cursor, close))
		return true;
	for (;;) {
		skip_space(cursor);
		if (is_object) {
			if (!check_string(cursor))
				return false;
			skip_space(cursor);
			if (!take(cursor, ':'))
				return false;
		}
		if (!check_value(cursor, depth))
			return false;
		skip_space(cursor);
		if (take(cursor, close))
			return true;
		if (!take(cursor, ','))
			return false;
	}
}

static bool check_value(json_check_cursor *cursor, int depth)
{
	skip_space(cursor);
	if (cursor->at >= cursor->end)
		return false;
	switch (*cursor->at) {
	case '{':
		cursor->at++;
		return check_container(cursor, depth + 1, '}', true);
	case '[':
		cursor->at++;
		return check_container(cursor, depth + 1, ']', false);
	case '"':
		return check_string(cursor);
	case 't':
		return take_word(cursor, "true");
	case 'f':
		return take_word(cursor, "false");
	case 'n':
		return take_word(cursor, "null");
	default:
		return check_number(cursor);
	}
}

bool json_check_syntax(const char *text, size_t size)
{
	json_check_cursor cursor = {(const unsigned char *)text, (const unsigned char *)text + size};
	if (!check_value(&cursor, 0))
		return false;
	skip_space(&cursor);
	return cursor.at == cursor.end;
}
