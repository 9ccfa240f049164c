/* The version of libweft and weft: compare at compile time with
 * WEFT_VERSION_NUMBER >= WEFT_VERSION_AT(0, 2, 0). */
#ifndef WEFT_VERSION_H
#define WEFT_VERSION_H

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_STRING "0.1.0"

#define WEFT_VERSION_AT(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
#define WEFT_VERSION_NUMBER \
	WEFT_VERSION_AT(WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR, WEFT_VERSION_PATCH)

#endif
