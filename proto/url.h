/*
 * Where weftd listens by default, shared by weftd and libweft so the two
 * always agree. Pure functions of the environment; any thread.
 */
#ifndef PROTO_URL_H
#define PROTO_URL_H

#include <stddef.h>

/* The daemon's default listen URL for the calling user: ipc:///run/weft/weft.sock
 * for root, ipc://$XDG_RUNTIME_DIR/weft/weft.sock for others (or
 * ipc:///tmp/weft-$UID/weft.sock when XDG_RUNTIME_DIR is unset or not absolute).
 * Writes a NUL-terminated URL into buf; returns 0, or -1 when it does not fit. */
int proto_default_daemon_url(char *buf, size_t size);

/* The URL a client uses when it is given none: $WEFT_URL when set and not empty;
 * otherwise the calling user's own daemon socket when that file exists; otherwise
 * the system daemon's (ipc:///run/weft/weft.sock). Returns 0, or -1 when it does
 * not fit in buf. */
int proto_default_client_url(char *buf, size_t size);

/* The filesystem path of an ipc:// URL, or NULL for other schemes.
 * Borrowed: points into url. */
const char *proto_ipc_path(const char *url);

#endif
