/* See probe.h. */
#include "daemon/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
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

static int handshake(int fd, long long deadline)
{
	size_t sent = 0;
	while (sent < sizeof(request_header)) {
		ssize_t wrote = send(fd, request_header + sent, sizeof(request_header) - sent,
		                     MSG_NOSIGNAL);
		if (wrote > 0) {
			sent += (size_t)wrote;
		} else if (wrote < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (!wait_for(fd, POLLOUT, deadline))
				return WEFT_ETIMEOUT;
		} else {
			return WEFT_ECONNECT;
		}
	}
	unsigned char reply[8];
	size_t got = 0;
	while (got < sizeof(reply)) {
		if (!wait_for(fd, POLLIN, deadline))
			return WEFT_ETIMEOUT;
		ssize_t read_now = recv(fd, reply + got, sizeof(reply) - got, 0);
		if (read_now > 0)
			got += (size_t)read_now;
		else if (read_now == 0 || (errno != EAGAIN && errno != EINTR))
			return WEFT_ECONNECT;
	}
	return reply[0] == 0 && reply[1] == 'S' && reply[2] == 'P' && reply[3] == 0 ? WEFT_OK
	                                                                              : WEFT_EPROTO;
}

static int probe_ipc(const char *path, long long deadline)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(address.sun_path))
		return WEFT_EINVAL;
	strcpy(address.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return WEFT_ECONNECT;
	int rv = connect_within(fd, (struct sockaddr *)&address, sizeof(address), deadline);
	if (rv == WEFT_OK)
		rv = handshake(fd, deadline);
	close(fd);
	return rv;
}

static int probe_tcp(const char *rest, long long deadline)
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
	int rv = WEFT_ECONNECT;
	if (fd >= 0) {
		rv = connect_within(fd, found->ai_addr, found->ai_addrlen, deadline);
		if (rv == WEFT_OK)
			rv = handshake(fd, deadline);
		close(fd);
	}
	freeaddrinfo(found);
	return rv;
}

int probe_url(const char *url, int timeout_ms)
{
	long long deadline = milliseconds_now() + timeout_ms;
	const char *path = proto_ipc_path(url);
	if (path != NULL)
		return probe_ipc(path, deadline);
	if (strncmp(url, "tcp://", 6) == 0)
		return probe_tcp(url + 6, deadline);
	return WEFT_EINVAL;
}
