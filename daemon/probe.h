/*
 * Is a weft socket alive? Connects to an ipc:// or tcp:// URL without nng and
 * completes the SP protocol handshake (an 8-byte header each way) as a REQ
 * peer would, then hangs up.
 *
 * Why not nng: nng 1.5's own liveness check (a connect and an immediate hang-up
 * in the middle of the handshake) is exactly what makes a 1.5 listener stop
 * accepting for good (nng issue #1518). A full handshake does not, so this probe
 * is safe to point at a live daemon, and it is how weftd watches its own
 * listeners. Blocking, bounded by the timeout; any thread.
 */
#ifndef PROBE_H
#define PROBE_H

/* Returns WEFT_OK when a peer answered the handshake within timeout_ms;
 * WEFT_ECONNECT when nothing listens (refused, no such socket file);
 * WEFT_ETIMEOUT when the connection was made but no handshake came;
 * WEFT_EPROTO when the peer answered something that is not SP;
 * WEFT_EINVAL for a URL scheme it cannot probe (only ipc:// and tcp://). */
int probe_url(const char *url, int timeout_ms);

#endif
