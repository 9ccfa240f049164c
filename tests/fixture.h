/*
 * A real weftd for integration tests: started from $WEFTD (an absolute path
 * that `make check` sets) on ipc://<a fresh private directory>/weft.sock,
 * waited for until it answers ping, and stopped with SIGTERM at the end.
 *
 * Use from a test's own process (Check forks each test): fixture_start in the
 * test or its checked setup, fixture_stop at its end. If the test dies before
 * fixture_stop (a failed assertion, a timeout), a watchdog process prints the
 * daemon's log, stops the daemon and removes the directory; the daemon also
 * gets SIGTERM when the test process dies (PR_SET_PDEATHSIG). Main thread
 * only; the fixture must stay at the same address until fixture_stop.
 */
#ifndef TESTS_FIXTURE_H
#define TESTS_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct fixture {
	char directory[128]; /* the private temporary directory (ipc paths are short) */
	char url[160];       /* ipc://<directory>/weft.sock */
	char log_path[160];  /* the daemon's stderr */
	pid_t pid;           /* the daemon; 0 once it exited */
	pid_t watchdog_pid;  /* cleans up if the test dies; 0 once stopped */
	int watchdog_fd;     /* write end of the watchdog's pipe */
} fixture;

/* Starts weftd with --listen <url> plus extra_args (NULL-terminated, may be
 * NULL), adding "--workers 2", "--grace 0.1", "--state-dir none" and "--log-level info"
 * unless extra_args gives them. To restart on the same store, pass
 * "--state-dir DIR" (a directory the test owns), stop the daemon
 * (fixture_stop, or fixture_stop_within with SIGKILL) and start it again with
 * the same arguments. Waits up to 10 s for a ping to answer. Fails the test (with the
 * daemon's log) when the daemon does not come up. */
void fixture_start(fixture *daemon, const char *const *extra_args);

/* Sends SIGTERM, waits up to 10 s for the daemon to exit, removes the
 * directory, and fails the test unless the daemon exited with status 0. */
void fixture_stop(fixture *daemon);

/* Sends `signal_number` to the daemon and waits up to `seconds` for it to exit.
 * Returns true with the wait status in *status when it exited in time;
 * otherwise SIGKILLs it and returns false. Either way the daemon is reaped, the
 * directory removed and the fixture done (like fixture_stop, without asserting,
 * so that a test can count failures). The log is printed when the exit was not
 * a clean status 0. */
bool fixture_stop_within(fixture *daemon, int signal_number, double seconds, int *status);

/* Copies the daemon's log to stderr, framed. */
void fixture_print_log(const fixture *daemon);

/* Whether the daemon process is still alive (it has not exited). */
bool fixture_alive(fixture *daemon);

/* Seconds on the monotonic clock, for timing assertions. */
double fixture_now(void);
/* environ with each "NAME=value" of settings (NULL-terminated) in place of
 * NAME's own entry, for execve in a child: built before fork, since the child
 * of a threaded test may not allocate (a sanitizer's allocator can be locked
 * by a thread that the fork left behind, and the child then hangs). The
 * array is new (fixture_environ_free); the strings are borrowed. */
char **fixture_environ_with(const char *const *settings);
void fixture_environ_free(char **environment);

/* How many threads the daemon has now (/proc); fails the test when it has gone. */
int fixture_threads(const fixture *daemon);

#endif
