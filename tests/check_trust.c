/*
 * Trust on a shared machine (issue 8), tried as local users would: a root
 * weftd on a socket every user can reach, and two throwaway users made for
 * the run (useradd) who submit through tests/helpers/wire_send, started with
 * their own credentials. Each test asserts the exact outcome: the uid a
 * command ran as, the error code a stranger gets.
 *
 * Needs root (to make users and to run weftd as the system daemon): as
 * anyone else, or without useradd, every test is skipped, and the program
 * says so and how many.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/as_user.h"
#include "tests/fixture.h"
#include "tests/wire.h"

static struct user alice, bob;
/* The programs users run (as_user.h copies them, so the build tree may sit
 * where users cannot enter). */
static char sender[PATH_MAX];
static char cli[PATH_MAX];
static char skip_reason[256];

/* ---------------------------------------------------------------- users */




/* ------------------------------------------------------------ as a user */

/* Runs argv as `user` (NULL: as root) with stdout and stderr into out[size]
 * (NUL-terminated); returns the exit status. */
static int run_as(const struct user *user, char *const argv[], char *out, size_t size)
{
	return as_user_run(user != NULL ? user->uid : (uid_t)-1, user != NULL ? user->gid : 0,
	                   argv[0], argv, out, size);
}

/* Sends `request` to url as `user` (NULL: as root) and returns the parsed
 * reply (new reference); fails the test when none comes. */
static json_t *call_as(const struct user *user, const char *url, const char *request)
{
	static char buffer[65536];
	char *argv[] = {sender, (char *)url, (char *)request, NULL};
	int status = run_as(user, argv, buffer, sizeof(buffer));
	ck_assert_msg(status == 0, "wire_send as %s failed (status %d) for %s: %s",
	              user ? user->name : "root", status, request, buffer);
	json_t *reply = json_loads(buffer, 0, NULL);
	ck_assert_msg(reply != NULL, "not JSON: %s", buffer);
	return reply;
}

static fixture weftd;

static void daemon_up(void)
{
	fixture_start(&weftd, NULL);
	/* Every local user may reach the system daemon's socket. */
	ck_assert_int_eq(chmod(weftd.directory, 0755), 0);
}

static void daemon_down(void)
{
	fixture_stop(&weftd);
}

static json_int_t integer_at(json_t *reply, const char *path_a, const char *path_b)
{
	json_t *value = json_object_get(reply, path_a);
	if (path_b != NULL)
		value = json_object_get(value, path_b);
	return json_integer_value(value);
}

/* The uid the exec job's command reported (its stdout), from a submit with wait. */
static long uid_printed(json_t *reply)
{
	json_t *result = json_object_get(reply, "result");
	const char *out = json_string_value(json_object_get(result, "stdout"));
	ck_assert_msg(out != NULL, "no stdout in %s", json_dumps(reply, 0));
	return strtol(out, NULL, 10);
}

static const char *code_of(json_t *reply)
{
	const char *code = wire_error_code(reply);
	return code != NULL ? code : "ok";
}

/* ------------------------------------------------------------- the tests */

START_TEST(exec_runs_as_its_submitter)
{
	json_t *reply = call_as(&alice, weftd.url,
	                        "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"id\",\"-u\"]},"
	                        "\"wait\":30}");
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	ck_assert_int_eq(uid_printed(reply), alice.uid);
	json_decref(reply);
}
END_TEST

/* The root hole: children of gather and race, nested or not, ran as root. */
START_TEST(children_of_gather_and_race_run_as_the_submitter)
{
	static const char *const requests[] = {
		"{\"op\":\"submit\",\"fn\":\"gather\",\"args\":{\"jobs\":[{\"fn\":\"exec\",\"args\":"
		"{\"argv\":[\"id\",\"-u\"]}}]},\"wait\":30}",
		"{\"op\":\"submit\",\"fn\":\"race\",\"args\":{\"jobs\":[{\"fn\":\"exec\",\"args\":"
		"{\"argv\":[\"id\",\"-u\"]}}]},\"wait\":30}",
		"{\"op\":\"submit\",\"fn\":\"gather\",\"args\":{\"jobs\":[{\"fn\":\"gather\",\"args\":"
		"{\"jobs\":[{\"fn\":\"race\",\"args\":{\"jobs\":[{\"fn\":\"exec\",\"args\":{\"argv\":"
		"[\"id\",\"-u\"]}}]}}]}}]},\"wait\":30}",
	};
	for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		json_t *reply = call_as(&bob, weftd.url, requests[i]);
		ck_assert_msg(strcmp(json_string_value(json_object_get(reply, "state")), "done") == 0,
		              "%s", json_dumps(reply, 0));
		/* Dig to the innermost result: gather gives an array, race its winner's. */
		json_t *result = json_object_get(reply, "result");
		while (json_is_array(result))
			result = json_array_get(result, 0);
		const char *out = json_string_value(json_object_get(result, "stdout"));
		ck_assert_msg(out != NULL, "%s", json_dumps(reply, 0));
		ck_assert_int_eq(strtol(out, NULL, 10), bob.uid);
		json_decref(reply);
	}
}
END_TEST

START_TEST(after_chains_and_retries_run_as_the_submitter)
{
	json_t *first = call_as(&alice, weftd.url,
	                        "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1}}");
	char request[512];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"sh\",\"-c\",\"id -u; "
	         "test -e /proc/self/fd/9999\"]},\"after\":[%lld],\"retries\":1,"
	         "\"retry_backoff\":0,\"wait\":30}",
	         (long long)integer_at(first, "id", NULL));
	json_t *reply = call_as(&alice, weftd.url, request);
	/* Both attempts fail (exit 1); the last one's output says who ran it. */
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "failed");
	json_t *details = json_object_get(json_object_get(reply, "error"), "details");
	ck_assert_int_eq(strtol(json_string_value(json_object_get(details, "stdout")), NULL, 10),
	                 alice.uid);
	snprintf(request, sizeof(request), "{\"op\":\"status\",\"id\":%lld}",
	         (long long)integer_at(reply, "id", NULL));
	json_t *status = call_as(&alice, weftd.url, request);
	ck_assert_int_eq(json_array_size(json_object_get(json_object_get(status, "job"), "attempts")),
	                 2);
	json_decref(status);
	json_decref(reply);
	json_decref(first);
}
END_TEST

START_TEST(a_job_has_its_own_session_and_no_terminal)
{
	/* Fields 6 and 7 of /proc/PID/stat: session id and controlling tty. */
	json_t *reply = call_as(&alice, weftd.url,
	                        "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"sh\",\"-c\","
	                        "\"echo $$ $(cut -d' ' -f6,7 /proc/$$/stat)\"]},\"wait\":30}");
	const char *out = json_string_value(json_object_get(json_object_get(reply, "result"), "stdout"));
	ck_assert_ptr_nonnull(out);
	long pid, session, tty;
	ck_assert_int_eq(sscanf(out, "%ld %ld %ld", &pid, &session, &tty), 3);
	ck_assert_int_eq(session, pid);
	ck_assert_int_eq(tty, 0);
	json_decref(reply);
}
END_TEST

START_TEST(file_sha256_reads_only_what_the_submitter_may)
{
	char path[256], request[512];
	snprintf(path, sizeof(path), "%s/root-only", weftd.directory);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "secret\n", 7), 7);
	close(fd);
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"file.sha256\",\"args\":{\"path\":\"%s\"},\"wait\":30}",
	         path);
	json_t *reply = call_as(&alice, weftd.url, request);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "failed");
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(reply, "error"), "type")),
		"PermissionError");
	json_decref(reply);
	/* The same file is alice's to read once it is hers. */
	ck_assert_int_eq(chown(path, alice.uid, alice.gid), 0);
	reply = call_as(&alice, weftd.url, request);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	ck_assert_int_eq(integer_at(reply, "result", "size"), 7);
	json_decref(reply);
	/* A device is refused before it is opened, whoever asks. */
	reply = call_as(&alice, weftd.url,
	                "{\"op\":\"submit\",\"fn\":\"file.sha256\",\"args\":{\"path\":\"/dev/zero\"},"
	                "\"wait\":30}");
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "failed");
	ck_assert_msg(strstr(json_string_value(json_object_get(json_object_get(reply, "error"),
	                                                       "message")),
	                     "not a regular file") != NULL,
	              "%s", json_dumps(reply, 0));
	json_decref(reply);
	unlink(path);
}
END_TEST

START_TEST(a_stranger_can_neither_see_nor_touch_a_job)
{
	json_t *mine = call_as(&alice, weftd.url,
	                       "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"sleep\",\"30\"],"
	                       "\"env\":{\"TOKEN\":\"hunter2\"}}}");
	json_int_t id = integer_at(mine, "id", NULL);
	ck_assert_int_gt(id, 0);
	char request[256];
	static const char *const ops[] = {
		"{\"op\":\"status\",\"id\":%lld}",
		"{\"op\":\"result\",\"id\":%lld,\"timeout\":0}",
		"{\"op\":\"result\",\"ids\":[%lld],\"timeout\":0}",
		"{\"op\":\"wait\",\"ids\":[%lld],\"timeout\":0}",
		"{\"op\":\"as_completed\",\"ids\":[%lld],\"timeout\":0}",
		"{\"op\":\"cancel\",\"id\":%lld}",
		"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"after\":[%lld]}",
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		snprintf(request, sizeof(request), ops[i], (long long)id);
		json_t *reply = call_as(&bob, weftd.url, request);
		char *text = json_dumps(reply, 0);
		ck_assert_msg(strcmp(code_of(reply), "permission_denied") == 0, "%s -> %s", request,
		              text);
		ck_assert_msg(strstr(text, "hunter2") == NULL, "a secret leaked: %s", text);
		free(text);
		json_decref(reply);
	}
	/* Nor through a job that awaits it. */
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"await\",\"args\":{\"id\":%lld},\"wait\":30}",
	         (long long)id);
	json_t *awaited = call_as(&bob, weftd.url, request);
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(awaited, "error"), "type")),
		"PermissionError");
	json_decref(awaited);
	/* list: bob sees none of alice's jobs; root sees them with their owner. */
	json_t *list = call_as(&bob, weftd.url, "{\"op\":\"list\"}");
	ck_assert_int_eq(json_array_size(json_object_get(list, "jobs")), 1); /* the await */
	json_decref(list);
	list = call_as(NULL, weftd.url, "{\"op\":\"list\",\"order\":\"oldest\"}");
	json_t *first = json_array_get(json_object_get(list, "jobs"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(first, "owner")), alice.uid);
	json_decref(list);
	/* The job still runs: bob's cancel did nothing. Its owner may cancel it. */
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)id);
	json_t *reply = call_as(&alice, weftd.url, request);
	ck_assert(json_is_true(json_object_get(reply, "cancelled")));
	json_decref(reply);
	json_decref(mine);
}
END_TEST

START_TEST(a_future_is_set_only_by_its_maker)
{
	json_t *made = call_as(&alice, weftd.url, "{\"op\":\"future.new\"}");
	char request[256];
	snprintf(request, sizeof(request), "{\"op\":\"future.set\",\"id\":%lld,\"result\":1}",
	         (long long)integer_at(made, "id", NULL));
	json_t *reply = call_as(&bob, weftd.url, request);
	ck_assert_str_eq(code_of(reply), "permission_denied");
	json_decref(reply);
	reply = call_as(&alice, weftd.url, request);
	ck_assert_str_eq(code_of(reply), "ok");
	json_decref(reply);
	json_decref(made);
}
END_TEST

START_TEST(queues_are_changed_only_by_root)
{
	static const char *const changes[] = {
		"{\"op\":\"queue.set\",\"name\":\"builds\",\"max\":1}",
		"{\"op\":\"queue.pause\",\"name\":\"builds\"}",
		"{\"op\":\"queue.resume\",\"name\":\"builds\"}",
	};
	for (size_t i = 0; i < 3; i++) {
		json_t *reply = call_as(&alice, weftd.url, changes[i]);
		ck_assert_msg(strcmp(code_of(reply), "permission_denied") == 0, "%s",
		              json_dumps(reply, 0));
		json_decref(reply);
		reply = call_as(NULL, weftd.url, changes[i]);
		ck_assert_msg(strcmp(code_of(reply), "ok") == 0, "%s", json_dumps(reply, 0));
		json_decref(reply);
	}
	/* Anyone may submit into a queue that exists. */
	json_t *reply = call_as(&alice, weftd.url,
	                        "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
	                        "\"queue\":\"builds\",\"wait\":30}");
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	json_decref(reply);
}
END_TEST


/* Starts weftd with argv (after the binary) expecting it to refuse: returns
 * its exit status, with what it logged in out[size]. */
static int weftd_refuses(const char *const *args, char *out, size_t size)
{
	char *argv[16];
	size_t argc = 0;
	argv[argc++] = getenv("WEFTD");
	argv[argc++] = (char *)"--state-dir";
	argv[argc++] = (char *)"none";
	for (size_t i = 0; args[i] != NULL && argc < 15; i++)
		argv[argc++] = (char *)args[i];
	argv[argc] = NULL;
	return run_as(NULL, argv, out, size);
}

START_TEST(plain_tcp_is_refused_at_start)
{
	char log[8192];
	const char *const args[] = {"--listen", "tcp://127.0.0.1:0", NULL};
	ck_assert_int_ne(weftd_refuses(args, log, sizeof(log)), 0);
	ck_assert_msg(strstr(log, "refusing to listen on tcp://127.0.0.1:0") != NULL &&
	                      strstr(log, "--insecure-tcp-user") != NULL,
	              "%s", log);
	const char *const as_root[] = {"--listen", "tcp://127.0.0.1:0", "--insecure-tcp-user",
	                               "root", NULL};
	ck_assert_int_ne(weftd_refuses(as_root, log, sizeof(log)), 0);
	ck_assert_msg(strstr(log, "never as root") != NULL, "%s", log);
}
END_TEST

/* A free loopback port (another program could take it before weftd does;
 * on a test machine nothing does). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t length = sizeof(address);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&address, &length), 0);
	close(fd);
	return ntohs(address.sin_port);
}

START_TEST(an_insecure_tcp_peer_acts_as_the_named_user_only)
{
	fixture tcp;
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", free_port());
	const char *const args[] = {"--listen", url, "--insecure-tcp-user", alice.name, NULL};
	fixture_start(&tcp, args);
	/* Even root's process, over tcp, is alice. */
	json_t *reply = call_as(NULL, url,
	                        "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"id\",\"-u\"]},"
	                        "\"wait\":30}");
	ck_assert_int_eq(uid_printed(reply), alice.uid);
	json_decref(reply);
	reply = call_as(NULL, url, "{\"op\":\"queue.set\",\"name\":\"q\",\"max\":1}");
	ck_assert_str_eq(code_of(reply), "permission_denied");
	json_decref(reply);
	fixture_stop(&tcp);
}
END_TEST

START_TEST(an_admin_group_member_acts_on_every_job)
{
	fixture admin;
	/* useradd --user-group gave alice a group of her name. */
	const char *const args[] = {"--admin-group", alice.name, NULL};
	fixture_start(&admin, args);
	ck_assert_int_eq(chmod(admin.directory, 0755), 0);
	json_t *theirs = call_as(&bob, admin.url, "{\"op\":\"future.new\"}");
	char request[128];
	snprintf(request, sizeof(request), "{\"op\":\"future.set\",\"id\":%lld,\"result\":7}",
	         (long long)integer_at(theirs, "id", NULL));
	json_t *reply = call_as(&alice, admin.url, request);
	ck_assert_str_eq(code_of(reply), "ok");
	json_decref(reply);
	reply = call_as(&alice, admin.url, "{\"op\":\"list\"}");
	ck_assert_int_eq(json_array_size(json_object_get(reply, "jobs")), 1);
	json_decref(reply);
	json_decref(theirs);
	fixture_stop(&admin);
}
END_TEST

START_TEST(a_squatted_socket_directory_is_refused)
{
	/* bob makes a world-writable directory where alice's socket would go. */
	char directory[64], url[128], log[8192];
	snprintf(directory, sizeof(directory), "/tmp/weft-squat-%d", (int)getpid());
	ck_assert_int_eq(mkdir(directory, 0700), 0);
	ck_assert_int_eq(chown(directory, bob.uid, bob.gid), 0);
	ck_assert_int_eq(chmod(directory, 0777), 0);
	snprintf(url, sizeof(url), "ipc://%s/weft.sock", directory);
	/* The daemon will not listen there... */
	const char *const args[] = {"--listen", url, NULL};
	ck_assert_int_ne(weftd_refuses(args, log, sizeof(log)), 0);
	ck_assert_msg(strstr(log, "belongs to uid") != NULL, "%s", log);
	/* ...and alice's client will not send it her requests. */
	char *ping[] = {cli, (char *)"--url", url, (char *)"ping", NULL};
	ck_assert_int_ne(run_as(&alice, ping, log, sizeof(log)), 0);
	ck_assert_msg(strstr(log, "refusing to connect") != NULL, "%s", log);
	/* Owned by alice but writable by others: refused too. */
	ck_assert_int_eq(chown(directory, alice.uid, alice.gid), 0);
	ck_assert_int_ne(run_as(&alice, ping, log, sizeof(log)), 0);
	ck_assert_msg(strstr(log, "writable by other users") != NULL, "%s", log);
	rmdir(directory);
}
END_TEST

START_TEST(a_job_gets_the_submitters_umask)
{
	char path[256], request[512];
	static const struct {
		int umask;
		unsigned mode;
	} cases[] = {{077, 0600}, {022, 0644}, {002, 0664}};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/made-%zu", weftd.directory, i);
		snprintf(request, sizeof(request),
		         "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"touch\",\"%s\"],"
		         "\"umask\":%d},\"wait\":30}",
		         path, cases[i].umask);
		ck_assert_int_eq(chmod(weftd.directory, 0777), 0);
		json_t *reply = call_as(&alice, weftd.url, request);
		ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
		json_decref(reply);
		struct stat st;
		ck_assert_int_eq(stat(path, &st), 0);
		ck_assert_uint_eq(st.st_uid, alice.uid);
		ck_assert_uint_eq(st.st_mode & 0777, cases[i].mode);
		unlink(path);
	}
	ck_assert_int_eq(chmod(weftd.directory, 0755), 0);
}
END_TEST


/* A CA, weftd's certificate (CN localhost) and a client's signed by it, and a
 * second CA with a client of its own, in dir. */
static void make_certificates(const char *dir)
{
	char command[2048];
	snprintf(command, sizeof(command),
	         "cd '%s' && for ca in ca other; do "
	         "openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key -out $ca.pem -days 2 "
	         "-subj \"/CN=weft test $ca\" || exit 1; done; "
	         "for pair in server:ca:localhost client:ca:client stranger:other:stranger; do "
	         "name=${pair%%%%:*}; rest=${pair#*:}; ca=${rest%%%%:*}; cn=${rest#*:}; "
	         "openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr "
	         "-subj /CN=$cn && openssl x509 -req -in $name.csr -CA $ca.pem -CAkey $ca.key "
	         "-CAcreateserial -out $name.pem -days 2 || exit 1; done",
	         dir);
	ck_assert_msg(as_user_shell(command) == 0, "openssl could not make the test certificates");
}

static void use_certificate(const char *dir, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	setenv("WEFT_TLS_CERT", path, 1);
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	setenv("WEFT_TLS_KEY", path, 1);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	setenv("WEFT_TLS_CA", path, 1);
}

START_TEST(tls_clients_need_a_certificate_from_the_ca)
{
	char dir[64] = "/tmp/weft-tls-XXXXXX", listen[64], url[64], server[3][128], log[8192];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	make_certificates(dir);
	int port = free_port();
	snprintf(listen, sizeof(listen), "tls+tcp://127.0.0.1:%d", port);
	snprintf(url, sizeof(url), "tls+tcp://localhost:%d", port);
	snprintf(server[0], sizeof(server[0]), "%s/server.pem", dir);
	snprintf(server[1], sizeof(server[1]), "%s/server.key", dir);
	snprintf(server[2], sizeof(server[2]), "%s/ca.pem", dir);
	/* Without a user to map to, a tls listener is refused. */
	const char *const unmapped[] = {"--listen", listen, "--tls-cert", server[0], "--tls-key",
	                                server[1], "--tls-ca", server[2], NULL};
	ck_assert_int_ne(weftd_refuses(unmapped, log, sizeof(log)), 0);
	ck_assert_msg(strstr(log, "--tls-user NAME") != NULL, "%s", log);

	fixture tls;
	const char *const args[] = {"--listen", listen, "--tls-cert", server[0], "--tls-key",
	                            server[1], "--tls-ca", server[2], "--tls-user", alice.name,
	                            NULL};
	fixture_start(&tls, args);
	static const char request[] =
		"{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"id\",\"-u\"]},\"wait\":30}";
	/* A certificate from the CA: the peer is alice, even from root's process. */
	use_certificate(dir, "client");
	json_t *reply = call_as(NULL, url, request);
	ck_assert_int_eq(uid_printed(reply), alice.uid);
	json_decref(reply);
	/* So through the CLI's flags. */
	char *run[] = {getenv("WEFT_CLI"), (char *)"--url", url, (char *)"--tls-cert",
	               (char *)getenv("WEFT_TLS_CERT"), (char *)"--tls-key",
	               (char *)getenv("WEFT_TLS_KEY"), (char *)"--tls-ca", (char *)getenv("WEFT_TLS_CA"),
	               (char *)"run", (char *)"--", (char *)"id", (char *)"-u", NULL};
	unsetenv("WEFT_TLS_CERT");
	ck_assert_int_eq(run_as(NULL, run, log, sizeof(log)), 0);
	ck_assert_int_eq(strtol(log, NULL, 10), alice.uid);
	/* A certificate from another CA, or none: no request gets through. */
	char *send[] = {sender, url, (char *)request, NULL};
	use_certificate(dir, "stranger");
	ck_assert_int_ne(run_as(NULL, send, log, sizeof(log)), 0);
	unsetenv("WEFT_TLS_CERT");
	unsetenv("WEFT_TLS_KEY");
	ck_assert_int_ne(run_as(NULL, send, log, sizeof(log)), 0);
	fixture_stop(&tls);
	char command[128];
	snprintf(command, sizeof(command), "rm -rf '%s'", dir);
	as_user_shell(command);
}
END_TEST


/* The keystroke attack: weftd started from a terminal (as `make run` is),
 * and a job that opens /dev/tty to push input into that terminal's shell
 * (TIOCSTI). A job has a session of its own with no terminal: it cannot. */
START_TEST(a_job_cannot_reach_the_terminal_weftd_was_started_from)
{
	char directory[64] = "/tmp/weft-tty-XXXXXX", url[128];
	ck_assert_ptr_nonnull(mkdtemp(directory));
	ck_assert_int_eq(chmod(directory, 0755), 0);
	snprintf(url, sizeof(url), "ipc://%s/weft.sock", directory);
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(master, 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	const char *terminal = ptsname(master);
	ck_assert_ptr_nonnull(terminal);
	pid_t weftd_pid = fork();
	ck_assert_int_ge(weftd_pid, 0);
	if (weftd_pid == 0) {
		/* A session leader that opens a terminal gets it as its own. */
		int tty;
		if (setsid() < 0 || (tty = open(terminal, O_RDWR)) < 0)
			_exit(125);
		dup2(tty, STDIN_FILENO);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execl(getenv("WEFTD"), "weftd", "--listen", url, "--workers", "1", "--grace", "0.1",
		      "--state-dir", "none", (char *)NULL);
		_exit(126);
	}
	ck_assert_msg(wire_answers_within(url, 10), "weftd on a terminal did not come up");
	json_t *reply = call_as(&alice, url,
	                        "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"shell\":"
	                        "\"if (exec 3</dev/tty) 2>/dev/null; then echo opened; else echo refused; fi\"},"
	                        "\"wait\":30}");
	const char *out = json_string_value(json_object_get(json_object_get(reply, "result"), "stdout"));
	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, "refused\n");
	json_decref(reply);
	kill(weftd_pid, SIGTERM);
	int status;
	ck_assert_int_eq(waitpid(weftd_pid, &status, 0), weftd_pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(master);
	rmdir(directory);
}
END_TEST

START_TEST(a_socket_group_decides_who_may_connect)
{
	fixture grouped;
	/* useradd --user-group gave alice a group of her name; bob is not in it. */
	const char *const args[] = {"--socket-group", alice.name, NULL};
	fixture_start(&grouped, args);
	struct stat st;
	ck_assert_int_eq(stat(grouped.directory, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0750);
	ck_assert_uint_eq(st.st_uid, 0);
	ck_assert_uint_eq(st.st_gid, alice.gid);
	json_t *reply = call_as(&alice, grouped.url, "{\"op\":\"ping\"}");
	ck_assert(json_is_true(json_object_get(reply, "ok")));
	json_decref(reply);
	char out[4096];
	char *send[] = {sender, grouped.url, (char *)"{\"op\":\"ping\"}", NULL};
	ck_assert_int_ne(run_as(&bob, send, out, sizeof(out)), 0);
	fixture_stop(&grouped);
}
END_TEST

/* ------------------------------------------------------------------ main */

static void prepare(void)
{
	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason),
		         "not root: the trust tests make throwaway users and run weftd as root");
		return;
	}
	if (as_user_shell("command -v useradd && command -v userdel") != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "useradd/userdel are not installed");
		return;
	}
	const char *build = getenv("WEFT_BUILD"), *weft = getenv("WEFT_CLI");
	if (build == NULL || weft == NULL) {
		snprintf(skip_reason, sizeof(skip_reason), "WEFT_BUILD and WEFT_CLI are unset "
		         "(make check sets them)");
		return;
	}
	snprintf(sender, sizeof(sender), "%s/tests/helpers/wire_send", build);
	snprintf(cli, sizeof(cli), "%s", weft);
	if (!as_user_create(&alice, "wta") || !as_user_create(&bob, "wtb"))
		snprintf(skip_reason, sizeof(skip_reason), "useradd failed");
}

static void clean_up(void)
{
	as_user_remove(&alice);
	as_user_remove(&bob);
}

int main(void)
{
	/* Other users must reach the fixture's socket: keep it under /tmp. */
	setenv("TMPDIR", "/tmp", 1);
	prepare();
	Suite *suite = suite_create("trust");
	TCase *as_users = tcase_create("as users");
	tcase_set_timeout(as_users, 60);
	if (skip_reason[0] == '\0')
		tcase_add_checked_fixture(as_users, daemon_up, daemon_down);
	const TTest *tests[] = {
		exec_runs_as_its_submitter,
		children_of_gather_and_race_run_as_the_submitter,
		after_chains_and_retries_run_as_the_submitter,
		a_job_has_its_own_session_and_no_terminal,
		file_sha256_reads_only_what_the_submitter_may,
		a_stranger_can_neither_see_nor_touch_a_job,
		a_future_is_set_only_by_its_maker,
		queues_are_changed_only_by_root,
		plain_tcp_is_refused_at_start,
		an_insecure_tcp_peer_acts_as_the_named_user_only,
		an_admin_group_member_acts_on_every_job,
		a_socket_group_decides_who_may_connect,
		a_squatted_socket_directory_is_refused,
		a_job_gets_the_submitters_umask,
		tls_clients_need_a_certificate_from_the_ca,
		a_job_cannot_reach_the_terminal_weftd_was_started_from,
	};
	size_t count = sizeof(tests) / sizeof(tests[0]);
	for (size_t i = 0; i < count; i++)
		tcase_add_test(as_users, tests[i]);
	suite_add_tcase(suite, as_users);
	if (skip_reason[0] != '\0') {
		as_user_skip((int)count, "trust tests", skip_reason);
		srunner_free(srunner_create(suite)); /* frees the suite */
		clean_up();
		return 0;
	}
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	clean_up();
	return failed == 0 ? 0 : 1;
}
