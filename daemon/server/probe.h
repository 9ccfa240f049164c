/*
 * Is a weft socket alive? Connects to an ipc:// or tcp:// URL without nng and
 * completes the SP protocol handshake (an 8-byte header each way) as a REQ
 * peer would, then hangs up.
 *
 * Why not nng: nng 1.5's own liveness check (a connect and an immediate hang-up
 * in the middle of the handshake) is exactly what makes a 1.5 listener stop
 * accepting for good (nng issue #1518). A full handshake does not, so this probe
 * is safe to point at a live daemon.
 *
 * probe_request() goes one step further, as weftd's listener guard needs: a
 * listener hit by #1518 still completes the handshake in the transport but
 * never attaches the connection to the socket, so only an answered request
 * tells that it accepts. It writes one REQ message by hand and waits for the
 * REP answer. Using no nng socket of its own is the point: closing an nng
 * socket can block forever once nng's reaper thread is stuck (issue 17), and a
 * raw file descriptor always closes.
 *
 * A connection whose handshake the peer has not answered when the timeout
 * passes is not hung up on, since that too breaks a 1.5 listener: it is kept
 * (at most 64, for at most 30 s) and closed by a later probe once the peer's
 * half of the handshake has come or the peer has hung up.
 *
 * Blocking, bounded by the timeout (every wait is a poll() with what is left of
 * it); any thread. Thread-safe: the kept connections are behind a lock.
 */
#ifndef PROBE_H
#define PROBE_H

/* Returns WEFT_OK when a peer answered the handshake within timeout_ms;
 * WEFT_ECONNECT when nothing listens (refused, no such socket file);
 * WEFT_ETIMEOUT when the connection was made but no handshake came;
 * WEFT_EPROTO when the peer answered something that is not SP;
 * WEFT_EBUSY when this process is out of file descriptors (EMFILE/ENFILE):
 * nothing was learnt about the peer;
 * WEFT_EINVAL for a URL scheme it cannot probe (only ipc:// and tcp://). */
int probe_url(const char *url, int timeout_ms);

/* The longest request probe_request() sends. */
#define PROBE_REQUEST_MAX 256

/* The handshake, then `request` (a JSON text of at most PROBE_REQUEST_MAX
 * bytes, borrowed) as one REQ message, and the REP answer's header. Returns
 * WEFT_OK when an answer to it came within timeout_ms (counted from the call,
 * connect included); the other codes as probe_url(), WEFT_EPROTO also for an
 * answer that is not to this request. */
int probe_request(const char *url, const char *request, int timeout_ms);

#endif
