/* The shared fixture of the tests against real servers; see servers.h. */
#include "tests/servers.h"

#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/as_user_call.h"
#include "tests/dns_server.h"
#include "tests/wire.h"

int servers_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t length = sizeof(address);
	bool bound = fd >= 0 && bind(fd, (struct sockaddr *)&address, sizeof(address)) == 0 &&
	             getsockname(fd, (struct sockaddr *)&address, &length) == 0;
	if (fd >= 0)
		close(fd);
	return bound ? ntohs(address.sin_port) : -1;
}

bool servers_make_directory(char *out, size_t size, const char *name, uid_t uid, gid_t gid)
{
	snprintf(out, size, "/tmp/weft-%s-XXXXXX", name);
	if (mkdtemp(out) == NULL) {
		out[0] = '\0';
		return false;
	}
	/* The server may run as another user; weftd's pool reads its socket too. */
	return chown(out, uid, gid) == 0 && chmod(out, 0755) == 0;
}

void servers_stop(pid_t pid, int signal_number, const char *directory)
{
	if (pid > 0) {
		kill(pid, signal_number);
		waitpid(pid, NULL, 0);
	}
	if (directory[0] != '\0') {
		char command[256];
		snprintf(command, sizeof(command), "rm -rf %s", directory);
		as_user_shell(command);
	}
}

void servers_start_with_dns(fixture *daemon, struct dns_server *dns, char *directory, size_t size)
{
	ck_assert(servers_make_directory(directory, size, "dns", -1, -1));
	dns_server_start(dns);
	char conf[256];
	dns_server_write_conf(dns, directory, conf, sizeof(conf));
	const char *const options[] = {"--resolv-conf", conf, NULL};
	fixture_start(daemon, options);
}

void servers_url_with_host(char *out, size_t size, const char *url, const char *host)
{
	const char *at = strstr(url, "127.0.0.1");
	ck_assert_msg(at != NULL, "no 127.0.0.1 in %s", url);
	snprintf(out, size, "%.*s%s%s", (int)(at - url), url, host, at + strlen("127.0.0.1"));
}

json_int_t servers_pool_stat(const fixture *daemon, const char *kind, const char *field)
{
	json_t *stats = wire_call(daemon->url, "{\"op\":\"stats\"}");
	json_t *value = json_object_get(json_object_get(json_object_get(stats, "io_pools"), kind), field);
	ck_assert_msg(json_is_integer(value), "no io_pools.%s.%s in %s", kind, field,
	              json_dumps(stats, 0));
	json_int_t number = json_integer_value(value);
	json_decref(stats);
	return number;
}

void servers_wait_pool_stat(const fixture *daemon, const char *kind, const char *field,
                            json_int_t wanted)
{
	double deadline = fixture_now() + 30;
	json_int_t now;
	while ((now = servers_pool_stat(daemon, kind, field)) != wanted)
		ck_assert_msg(fixture_now() < deadline, "io_pools.%s.%s is %lld, not %lld", kind, field,
		              (long long)now, (long long)wanted);
}

void servers_suite_begin(struct servers_suite *suite, const char *prefix, int tests,
                         const char *tests_name, int trust_tests, const char *trust_name)
{
	const char *build = getenv("WEFT_BUILD");
	if (geteuid() != 0)
		snprintf(suite->trust_skip, sizeof(suite->trust_skip),
		         "not root: needs a throwaway user");
	else if (build == NULL)
		snprintf(suite->trust_skip, sizeof(suite->trust_skip),
		         "WEFT_BUILD is unset (make check sets it)");
	else if (suite->skip[0] == '\0' && !as_user_create(&suite->stranger, prefix))
		snprintf(suite->trust_skip, sizeof(suite->trust_skip), "useradd failed");
	if (build != NULL)
		snprintf(suite->sender, sizeof(suite->sender), "%s/tests/helpers/wire_send", build);
	if (suite->skip[0] != '\0')
		as_user_skip(tests, tests_name, suite->skip);
	else if (suite->trust_skip[0] != '\0')
		as_user_skip(trust_tests, trust_name, suite->trust_skip);
}

void servers_suite_end(struct servers_suite *suite)
{
	as_user_remove(&suite->stranger);
}

json_t *servers_call_as(const struct servers_suite *suite, const char *url, const char *request)
{
	return as_user_call(&suite->stranger, suite->sender, url, request);
}
