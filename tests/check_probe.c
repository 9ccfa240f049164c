/*
 * The raw probe of daemon/server/probe.c, against a socket the test holds
 * itself: a probe that gives up in the middle of the handshake must not hang
 * up (a disconnect during negotiation is what breaks an nng 1.5.2 listener,
 * nng #1518), and the connection it kept is closed by a later probe once the
 * peer's half of the handshake has come.
 */
#include <check.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/server/probe.h"
#include "weft/error.h"

static char directory[64];
static char url[160];

/* A listening unix socket that nobody serves but this test. */
static int listen_here(const char *name)
{
	snprintf(directory, sizeof(directory), "/tmp/weft-probe-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(directory));
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	snprintf(address.sun_path, sizeof(address.sun_path), "%s/%s", directory, name);
	snprintf(url, sizeof(url), "ipc://%s", address.sun_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	return fd;
}

static void remove_here(int listener, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", directory, name);
	close(listener);
	unlink(path);
	rmdir(directory);
}

/* Whether the peer of fd has hung up: everything it sent is read first. */
static bool peer_hung_up(int fd)
{
	char buffer[64];
	for (;;) {
		ssize_t got = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
		if (got == 0)
			return true;
		if (got < 0)
			return errno != EAGAIN && errno != EWOULDBLOCK;
	}
}

START_TEST(a_probe_that_gives_up_in_the_handshake_does_not_hang_up)
{
	int listener = listen_here("silent.sock");
	/* The peer (this test) accepts but does not answer the handshake. */
	ck_assert_int_eq(probe_url(url, 50), WEFT_ETIMEOUT);
	int connection = accept(listener, NULL, NULL);
	ck_assert_int_ge(connection, 0);
	unsigned char header[8];
	ck_assert_int_eq(recv(connection, header, sizeof(header), MSG_WAITALL), 8);
	ck_assert_msg(header[1] == 'S' && header[2] == 'P', "the probe sent its SP header");
	ck_assert_msg(!peer_hung_up(connection),
	              "the probe hung up in the middle of the handshake");

	/* Another probe that gives up keeps its connection too, and closes
	 * neither while the handshake is still unanswered. */
	ck_assert_int_eq(probe_url(url, 50), WEFT_ETIMEOUT);
	int second = accept(listener, NULL, NULL);
	ck_assert_int_ge(second, 0);
	ck_assert_int_eq(recv(second, header, sizeof(header), MSG_WAITALL), 8);
	ck_assert(!peer_hung_up(connection));
	ck_assert(!peer_hung_up(second));

	/* Once the peer's half has come, the next probe closes that one. */
	static const unsigned char answer[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x31, 0x00, 0x00};
	ck_assert_int_eq(send(connection, answer, sizeof(answer), MSG_NOSIGNAL), 8);
	ck_assert_int_eq(probe_url("ipc:///nonexistent/weft.sock", 50), WEFT_ECONNECT);
	ck_assert_msg(peer_hung_up(connection), "the answered connection was not closed");
	ck_assert_msg(!peer_hung_up(second), "the unanswered connection was closed");

	/* A peer that hangs up itself ends the kept connection too. */
	close(second);
	ck_assert_int_eq(probe_url("ipc:///nonexistent/weft.sock", 50), WEFT_ECONNECT);
	close(connection);
	remove_here(listener, "silent.sock");
}
END_TEST

START_TEST(a_probe_answered_in_time_hangs_up_after_the_handshake)
{
	int listener = listen_here("answering.sock");
	/* The answer waits in the socket before the probe even connects: the
	 * backlog holds the connection, and the answer is written once it is
	 * accepted, which the probe's timeout allows for. */
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		int connection = accept(listener, NULL, NULL);
		static const unsigned char answer[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x31, 0x00, 0x00};
		unsigned char header[8];
		if (connection < 0 || recv(connection, header, sizeof(header), MSG_WAITALL) != 8 ||
		    send(connection, answer, sizeof(answer), MSG_NOSIGNAL) != 8)
			_exit(1);
		/* The probe hangs up after a whole handshake. */
		char byte;
		_exit(recv(connection, &byte, 1, 0) == 0 ? 0 : 2);
	}
	ck_assert_int_eq(probe_url(url, 60000), WEFT_OK);
	int status = -1;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	              "the peer did not see a whole handshake and then the end (status %d)",
	              status);
	remove_here(listener, "answering.sock");
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("probe");
	TCase *probe = tcase_create("probe");
	tcase_add_test(probe, a_probe_that_gives_up_in_the_handshake_does_not_hang_up);
	tcase_add_test(probe, a_probe_answered_in_time_hangs_up_after_the_handshake);
	suite_add_tcase(suite, probe);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
