/*
 * notify: sd_notify without libsystemd (see notify.h for why and what).
 */
#include "daemon/notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft/error.h"

/* Set by notify_init before any other thread exists, then only read: no lock. */
static struct {
	int fd; /* -1: not enabled */
	struct sockaddr_un address;
	socklen_t length;
	uint64_t watchdog_usec;
} state = {.fd = -1};

int notify_address(const char *name, struct sockaddr_un *address, socklen_t *length,
                   char *message, size_t message_size)
{
	struct sockaddr_un result;
	size_t name_length = name != NULL ? strlen(name) : 0;

	memset(&result, 0, sizeof(result));
	result.sun_family = AF_UNIX;
	if (name_length == 0 || (name[0] != '/' && name[0] != '@')) {
		snprintf(message, message_size,
		         "NOTIFY_SOCKET '%s' is neither an absolute path nor an abstract name "
		         "('@name'); unset it or let systemd set it",
		         name != NULL ? name : "");
		return WEFT_EINVAL;
	}
	/* A path needs room for its NUL; an abstract name is counted exactly. */
	if (name_length + (name[0] == '/' ? 1 : 0) > sizeof(result.sun_path) ||
	    (name[0] == '@' && name_length < 2)) {
		snprintf(message, message_size,
		         "NOTIFY_SOCKET '%.40s...' is too long or empty for a unix socket address "
		         "(at most %zu bytes)",
		         name, sizeof(result.sun_path) - 1);
		return WEFT_EINVAL;
	}
	memcpy(result.sun_path, name, name_length);
	if (name[0] == '@')
		result.sun_path[0] = '\0';
	*address = result;
	*length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name_length +
	                      (name[0] == '/' ? 1 : 0));
	return WEFT_OK;
}

uint64_t notify_parse_watchdog(const char *usec, const char *pid, pid_t self)
{
	char *end;
	unsigned long long value;

	if (usec == NULL || usec[0] < '0' || usec[0] > '9')
		return 0;
	errno = 0;
	value = strtoull(usec, &end, 10);
	if (errno != 0 || *end != '\0' || value == 0)
		return 0;
	if (pid != NULL && pid[0] != '\0') {
		long owner = strtol(pid, &end, 10);
		if (*end != '\0' || owner != (long)self)
			return 0;
	}
	return (uint64_t)value;
}

int notify_init(char *message, size_t message_size)
{
	const char *name = getenv("NOTIFY_SOCKET");
	int rv = WEFT_OK;

	state.watchdog_usec = 0;
	if (name != NULL) {
		rv = notify_address(name, &state.address, &state.length, message, message_size);
		if (rv == WEFT_OK) {
			state.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (state.fd < 0) {
				snprintf(message, message_size,
				         "cannot make a socket to tell systemd our state: %s",
				         strerror(errno));
				rv = WEFT_EINTERNAL;
			}
		}
		if (rv == WEFT_OK)
			state.watchdog_usec = notify_parse_watchdog(getenv("WATCHDOG_USEC"),
			                                            getenv("WATCHDOG_PID"), getpid());
	}
	/* Ours alone: nothing weftd starts may inherit them. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return rv;
}

bool notify_enabled(void)
{
	return state.fd >= 0;
}

uint64_t notify_watchdog_usec(void)
{
	return state.fd >= 0 ? state.watchdog_usec : 0;
}

int notify_send(const char *text)
{
	ssize_t sent;

	if (state.fd < 0)
		return WEFT_OK;
	do
		sent = sendto(state.fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL,
		              (const struct sockaddr *)&state.address, state.length);
	while (sent < 0 && errno == EINTR);
	return sent >= 0 ? WEFT_OK : WEFT_EINTERNAL;
}

void notify_fini(void)
{
	if (state.fd >= 0)
		close(state.fd);
	state.fd = -1;
}
