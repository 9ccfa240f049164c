/* Base64 and the UTF-8 check that decides when it is needed; see base64.h. */
#include "proto/base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_size(size_t length)
{
	return (length + 2) / 3 * 4;
}

void base64_encode(const void *data, size_t length, char *out)
{
	const unsigned char *in = data;
	size_t i = 0;
	for (; i + 3 <= length; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = alphabet[(v >> 6) & 63];
		*out++ = alphabet[v & 63];
	}
	if (i < length) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < length)
			v |= (uint32_t)in[i + 1] << 8;
		*out++ = alphabet[v >> 18];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = i + 1 < length ? alphabet[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
}

size_t base64_decoded_max(size_t length)
{
	return length / 4 * 3;
}

/* The value of a base64 character, or -1. */
static int value_of(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool base64_decode(const char *text, size_t length, void *out, size_t *written)
{
	const unsigned char *in = (const unsigned char *)text;
	unsigned char *to = out;
	if (length % 4 != 0)
		return false;
	for (size_t i = 0; i < length; i += 4) {
		bool last = i + 4 == length;
		int pad = 0;
		if (last && in[i + 3] == '=')
			pad = in[i + 2] == '=' ? 2 : 1;
		int a = value_of(in[i]), b = value_of(in[i + 1]);
		int c = pad >= 2 ? 0 : value_of(in[i + 2]);
		int d = pad >= 1 ? 0 : value_of(in[i + 3]);
		if (a < 0 || b < 0 || c < 0 || d < 0)
			return false;
		uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		*to++ = (unsigned char)(v >> 16);
		if (pad < 2)
			*to++ = (unsigned char)(v >> 8);
		if (pad < 1)
			*to++ = (unsigned char)v;
	}
	*written = (size_t)(to - (unsigned char *)out);
	return true;
}

bool base64_is_utf8(const void *data, size_t length)
{
	const unsigned char *s = data;
	size_t i = 0;
	while (i < length) {
		unsigned char lead = s[i];
		unsigned char low = 0x80, high = 0xBF;
		size_t need;
		if (lead < 0x80) {
			i++;
			continue;
		}
		if (lead >= 0xC2 && lead <= 0xDF) {
			need = 1;
		} else if (lead >= 0xE0 && lead <= 0xEF) {
			need = 2;
			if (lead == 0xE0)
				low = 0xA0;
			else if (lead == 0xED)
				high = 0x9F;
		} else if (lead >= 0xF0 && lead <= 0xF4) {
			need = 3;
			if (lead == 0xF0)
				low = 0x90;
			else if (lead == 0xF4)
				high = 0x8F;
		} else {
			return false;
		}
		if (i + need >= length)
			return false;
		for (size_t k = 1; k <= need; k++) {
			if (s[i + k] < low || s[i + k] > high)
				return false;
			low = 0x80;
			high = 0xBF;
		}
		i += need + 1;
	}
	return true;
}
