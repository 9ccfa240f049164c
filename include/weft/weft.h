/* weft's public API in one include: the error table and the client library. */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include "weft/version.h"
#include "weft/error.h"
#include "weft/client.h"
#include "weft/async.h"
#include "weft/stream.h"

#endif
