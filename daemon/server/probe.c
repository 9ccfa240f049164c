/* See probe.h. */
#include "daemon/server/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto/url.h"
#include "weft/error.h"

/* SP header: 0x00 'S' 'P' 0x00, the 16-bit protocol number (REQ v0 = 0x30), two reserved bytes. */
static const unsigned char request_header[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00};

static long long milliseconds_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline. Returns 1 when ready, 0 on timeout. */
static int wait_for(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - milliseconds_now();
		if (left <= 0)
			return 0;
		struct pollfd entry = {.fd = fd, .events = events};
		int ready = poll(&entry, 1, (int)left);
		if (ready > 0)
			return 1;
		if (ready < 0 && errno != EINTR)
			return 0;
	}
}

/* Connects a non-blocking socket. Returns WEFT_OK, WEFT_ECONNECT or WEFT_ETIMEOUT. */
static int connect_within(int fd, const struct sockaddr *address, socklen_t length,
                          long long deadline)
{
	if (connect(fd, address, length) == 0)
		return WEFT_OK;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return WEFT_ECONNECT;
	if (!wait_for(fd, POLLOUT, deadline))
		return WEFT_ETIMEOUT;
	int error = 0;
	socklen_t size = sizeof(error);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
	return error == 0 ? WEFT_OK : WEFT_ECONNECT;
}

/* Writes all of buffer before the deadline. */
static int send_all(int fd, const unsigned char *buffer, size_t size, long long deadline)
{
	size_t sent = 0;
	while (sent < size) {
		ssize_t wrote = send(fd, buffer + sent, size - sent, MSG_NOSIGNAL);
		if (wrote > 0) {
			sent += (size_t)wrote;
		} else if (wrote < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!wait_for(fd, POLLOUT, deadline))
				return WEFT_ETIMEOUT;
		} else {
			return WEFT_ECONNECT;
		}
	}
	return WEFT_OK;
}

/* Reads exactly size bytes before the deadline. */
static int receive_all(int fd, unsigned char *buffer, size_t size, long long deadline)
{
	size_t got = 0;
	while (got < size) {
		if (!wait_for(fd, POLLIN, deadline))
			return WEFT_ETIMEOUT;
		ssize_t read_now = recv(fd, buffer + got, size - got, 0);
		if (read_now > 0)
			got += (size_t)read_now;
		else if (read_now == 0 || (errno != EAGAIN && errno != EINTR))
			return WEFT_ECONNECT;
	}
	return WEFT_OK;
}

static int handshake(int fd, long long deadline)
{
	int rv = send_all(fd, request_header, sizeof(request_header), deadline);
	if (rv != WEFT_OK)
		return rv;
	unsigned char reply[8];
	if ((rv = receive_all(fd, reply, sizeof(reply), deadline)) != WEFT_OK)
		return rv;
	return reply[0] == 0 && reply[1] == 'S' && reply[2] == 'P' && reply[3] == 0 ? WEFT_OK
	                                                                              : WEFT_EPROTO;
}

/*
 * Connections whose handshake the peer had not answered when a probe gave
 * up. Hanging up on one is the very thing that breaks an nng 1.5.2 listener
 * (#1518: a disconnect during negotiation), and a busy daemon can be slower
 * than a probe's timeout, so the probe that gives up keeps the connection
 * here instead of closing it. It is closed once the peer's side of the
 * handshake has arrived (its negotiation then ends well, whatever follows),
 * the peer has hung up, or LINGER_MS has passed (nng gives up its own side
 * of a negotiation well before). At most LINGER_MAX at once: past that the
 * oldest is closed. Any thread; the lock guards the table, held only for
 * non-blocking calls.
 */
#define LINGER_MAX 64
#define LINGER_MS 30000
static pthread_mutex_t linger_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int fd;
	long long until; /* milliseconds_now() */
} lingering[LINGER_MAX];
static size_t linger_count;

/* Closes the kept connections that are done; linger_lock held. */
static void linger_sweep_locked(long long now)
{
	size_t kept = 0;
	for (size_t i = 0; i < linger_count; i++) {
		unsigned char byte;
		ssize_t got = recv(lingering[i].fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
		bool waiting = got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
		if (waiting && now < lingering[i].until)
			lingering[kept++] = lingering[i];
		else
			close(lingering[i].fd);
	}
	linger_count = kept;
}

/* Takes fd (owned by the caller until now) into the table. */
static void linger_keep(int fd)
{
	long long now = milliseconds_now();
	pthread_mutex_lock(&linger_lock);
	linger_sweep_locked(now);
	if (linger_count == LINGER_MAX) {
		close(lingering[0].fd);
		memmove(&lingering[0], &lingering[1], (LINGER_MAX - 1) * sizeof(lingering[0]));
		linger_count--;
	}
	lingering[linger_count].fd = fd;
	lingering[linger_count++].until = now + LINGER_MS;
	pthread_mutex_unlock(&linger_lock);
}

static void linger_sweep(void)
{
	pthread_mutex_lock(&linger_lock);
	linger_sweep_locked(milliseconds_now());
	pthread_mutex_unlock(&linger_lock);
}

/* Ends a probe's connection: at once, unless the handshake was cut short
 * by the timeout (see above). */
static void finish(int fd, bool in_handshake, int rv)
{
	if (in_handshake && rv == WEFT_ETIMEOUT)
		linger_keep(fd);
	else
		close(fd);
}

static void put64(unsigned char *out, uint64_t value)
{
	for (int i = 7; i >= 0; i--, value >>= 8)
		out[i] = (unsigned char)value;
}

static uint64_t get64(const unsigned char *in)
{
	uint64_t value = 0;
	for (int i = 0; i < 8; i++)
		value = value << 8 | in[i];
	return value;
}

/*
 * One REQ v0 round trip written by hand, after the handshake. The framing is
 * nng's: on ipc a message is a type byte (1) and a 64-bit big-endian length;
 * on tcp the length alone. The REQ body starts with a 32-bit request id whose
 * top bit is set, and REP echoes it before its reply. Only the reply's header
 * and id are checked: any answer proves that the listener attached the pipe
 * to the socket and that a context received the request.
 */
static int round_trip(int fd, bool ipc, const char *request, long long deadline)
{
	static const uint32_t probe_id = 0x80000001u;
	size_t body = strlen(request);
	unsigned char frame[9 + 4 + PROBE_REQUEST_MAX];
	if (body > PROBE_REQUEST_MAX)
		return WEFT_EINVAL;
	size_t length_at = ipc ? 1 : 0;
	if (ipc)
		frame[0] = 1;
	put64(frame + length_at, 4 + body);
	unsigned char *id = frame + length_at + 8;
	id[0] = (unsigned char)(probe_id >> 24);
	id[1] = (unsigned char)(probe_id >> 16);
	id[2] = (unsigned char)(probe_id >> 8);
	id[3] = (unsigned char)probe_id;
	memcpy(id + 4, request, body);
	int rv = send_all(fd, frame, length_at + 8 + 4 + body, deadline);
	if (rv != WEFT_OK)
		return rv;
	unsigned char header[9];
	if ((rv = receive_all(fd, header, length_at + 8, deadline)) != WEFT_OK)
		return rv;
	if (ipc && header[0] != 1)
		return WEFT_EPROTO;
	uint64_t length = get64(header + length_at);
	unsigned char answer[4];
	if (length < sizeof(answer))
		return WEFT_EPROTO;
	if ((rv = receive_all(fd, answer, sizeof(answer), deadline)) != WEFT_OK)
		return rv;
	if (memcmp(answer, id, sizeof(answer)) != 0)
		return WEFT_EPROTO;
	/* The rest of the reply is not needed: hanging up now is an ordinary
	 * disconnect after the handshake, which nng handles. */
	return WEFT_OK;
}

static int probe_ipc(const char *path, const char *request, long long deadline)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(address.sun_path))
		return WEFT_EINVAL;
	strcpy(address.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE ? WEFT_EBUSY : WEFT_ECONNECT;
	int rv = connect_within(fd, (struct sockaddr *)&address, sizeof(address), deadline);
	bool in_handshake = rv == WEFT_OK;
	if (rv == WEFT_OK && (rv = handshake(fd, deadline)) == WEFT_OK) {
		in_handshake = false;
		if (request != NULL)
			rv = round_trip(fd, true, request, deadline);
	}
	finish(fd, in_handshake, rv);
	return rv;
}

static int probe_tcp(const char *rest, const char *request, long long deadline)
{
	char host[256];
	const char *colon = strrchr(rest, ':');
	if (colon == NULL || (size_t)(colon - rest) >= sizeof(host))
		return WEFT_EINVAL;
	memcpy(host, rest, (size_t)(colon - rest));
	host[colon - rest] = '\0';
	/* [::1]:7070 */
	char *bracketed = host;
	if (bracketed[0] == '[') {
		bracketed++;
		char *end = strchr(bracketed, ']');
		if (end != NULL)
			*end = '\0';
	}
	const char *name = bracketed;
	if (name[0] == '\0' || strcmp(name, "*") == 0)
		name = "127.0.0.1";
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found = NULL;
	if (getaddrinfo(name, colon + 1, &hints, &found) != 0 || found == NULL)
		return WEFT_ECONNECT;
	int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int rv = fd < 0 && (errno == EMFILE || errno == ENFILE) ? WEFT_EBUSY : WEFT_ECONNECT;
	if (fd >= 0) {
		rv = connect_within(fd, found->ai_addr, found->ai_addrlen, deadline);
		bool in_handshake = rv == WEFT_OK;
		if (rv == WEFT_OK && (rv = handshake(fd, deadline)) == WEFT_OK) {
			in_handshake = false;
			if (request != NULL)
				rv = round_trip(fd, false, request, deadline);
		}
		finish(fd, in_handshake, rv);
	}
	freeaddrinfo(found);
	return rv;
}

static int probe(const char *url, const char *request, int timeout_ms)
{
	linger_sweep();
	long long deadline = milliseconds_now() + timeout_ms;
	const char *path = proto_ipc_path(url);
	if (path != NULL)
		return probe_ipc(path, request, deadline);
	if (strncmp(url, "tcp://", 6) == 0)
		return probe_tcp(url + 6, request, deadline);
	return WEFT_EINVAL;
}

int probe_url(const char *url, int timeout_ms)
{
	return probe(url, NULL, timeout_ms);
}

int probe_request(const char *url, const char *request, int timeout_ms)
{
	if (request == NULL)
		return WEFT_EINVAL;
	return probe(url, request, timeout_ms);
}
