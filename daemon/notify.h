/*
 * notify: the systemd service manager's notification protocol (sd_notify),
 * written here rather than linked from libsystemd: it is one datagram of
 * "KEY=VALUE" lines to the socket named by $NOTIFY_SOCKET, and libsystemd
 * would bring its own dependencies (liblz4, libzstd, libgcrypt, ...) into
 * every weftd for that.
 *
 * What weftd sends: READY=1 once every listener accepts, STATUS=<one line>
 * while it runs, WATCHDOG=1 (daemon.c decides when), STOPPING=1 at SIGTERM.
 *
 * $NOTIFY_SOCKET is an absolute path or, with a leading '@', a name in the
 * abstract namespace (Linux: the '@' becomes a NUL byte, and the address length
 * counts the name exactly, with no terminating NUL). Without $NOTIFY_SOCKET
 * (not started by systemd, or Type=simple) every call does nothing.
 *
 * THREADS: notify_init runs on the main thread before any other thread
 * exists; after it the state is only read, and notify_send may be called from
 * any thread (one sendto on a datagram socket is atomic).
 */
#ifndef NOTIFY_H
#define NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/*
 * The address of a notification socket name. Pure: any thread. Returns
 * WEFT_OK with *address and *length, or WEFT_EINVAL with a message saying
 * what is wrong (empty, relative, too long) and what the name must look like.
 */
int notify_address(const char *name, struct sockaddr_un *address, socklen_t *length,
                   char *message, size_t message_size);

/*
 * The watchdog interval systemd asks for, in microseconds, from the values of
 * $WATCHDOG_USEC and $WATCHDOG_PID (either may be NULL). 0 when there is no
 * watchdog, when the value is not a positive number, or when WATCHDOG_PID
 * names another process (the variables were inherited, not meant for us).
 * Pure: any thread.
 */
uint64_t notify_parse_watchdog(const char *usec, const char *pid, pid_t self);

/*
 * Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID, then removes them
 * from weftd's environment, so nothing weftd starts inherits them (jobs get a
 * fresh environment anyway: proc.h). Main thread, before any other thread.
 * Returns WEFT_OK (also when there is nothing to talk to), or WEFT_EINVAL /
 * WEFT_EINTERNAL with a message when $NOTIFY_SOCKET is set but unusable.
 */
int notify_init(char *message, size_t message_size);

/* Whether $NOTIFY_SOCKET was set and usable. Any thread, after notify_init. */
bool notify_enabled(void);

/* notify_parse_watchdog of what notify_init read; 0 without a notify socket.
 * Any thread, after notify_init. */
uint64_t notify_watchdog_usec(void);

/*
 * Sends `text` (newline-separated KEY=VALUE lines) as one datagram. Does
 * nothing and returns WEFT_OK when not enabled. Never blocks (MSG_DONTWAIT):
 * a service manager that does not keep up loses a STATUS line rather than
 * stalling a loop. Returns WEFT_OK or WEFT_EINTERNAL (errno set). Any thread.
 */
int notify_send(const char *text);

/* Closes the socket. Main thread, after every other thread stopped. */
void notify_fini(void);

#endif
