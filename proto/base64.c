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
	/* Four characters per three bytes; the loop body has no branch. */
	for (; i + 3 <= length; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[0] = alphabet[v >> 18];
		out[1] = alphabet[(v >> 12) & 63];
		out[2] = alphabet[(v >> 6) & 63];
		out[3] = alphabet[v & 63];
		out += 4;
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

/* The value of each base64 character; 64 marks the others. */
static const unsigned char values[256] = {
#define X64 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64
	X64, X64,
	64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 62, 64, 64, 64, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 64, 64, 64, 64, 64, 64,
	64, 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 64, 64, 64, 64, 64,
	64, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 64, 64, 64, 64, 64,
	X64, X64, X64, X64, X64, X64, X64, X64,
#undef X64
};

bool base64_decode(const char *text, size_t length, void *out, size_t *written)
{
	const unsigned char *in = (const unsigned char *)text;
	unsigned char *to = out;
	if (length % 4 != 0)
		return false;
	size_t full = length == 0 ? 0 : length - 4; /* the last group may be padded */
	for (size_t i = 0; i < full; i += 4) {
		unsigned a = values[in[i]], b = values[in[i + 1]], c = values[in[i + 2]],
		         d = values[in[i + 3]];
		if ((a | b | c | d) & 64)
			return false;
		uint32_t v = a << 18 | b << 12 | c << 6 | d;
		to[0] = (unsigned char)(v >> 16);
		to[1] = (unsigned char)(v >> 8);
		to[2] = (unsigned char)v;
		to += 3;
	}
	if (length > 0) {
		const unsigned char *last = in + full;
		int pad = last[3] == '=' ? (last[2] == '=' ? 2 : 1) : 0;
		unsigned a = values[last[0]], b = values[last[1]];
		unsigned c = pad >= 2 ? 0 : values[last[2]];
		unsigned d = pad >= 1 ? 0 : values[last[3]];
		if ((a | b | c | d) & 64)
			return false;
		uint32_t v = a << 18 | b << 12 | c << 6 | d;
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
