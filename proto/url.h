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

/*
 * Whether the socket at `path` (an ipc URL's path) sits where only trusted
 * users can have put it: its directory is a real directory (not a symlink),
 * owned by `self` (or by root when allow_root), and writable by nobody else
 * (no group or other write bit), so no other user can have made, replaced or
 * squatted the socket. With check_socket the socket, when it exists, must be
 * owned by self or root too. Returns 0, or -1 with a message that says what is
 * wrong and how to fix it in message[size]. Any thread; it only stats.
 */
int proto_check_socket_path(const char *path, unsigned self, int allow_root, int check_socket,
                            char *message, size_t size);

/* The filesystem path of an ipc:// URL, or NULL for other schemes.
 * Borrowed: points into url. */
const char *proto_ipc_path(const char *url);

#endif
