/* Default socket locations; see url.h. */
#include "proto/url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/proto.h"

static int fits(int written, size_t size)
{
	return written >= 0 && (size_t)written < size ? 0 : -1;
}

int proto_default_daemon_url(char *buf, size_t size)
{
	if (geteuid() == 0)
		return fits(snprintf(buf, size, "%s", PROTO_ROOT_URL), size);
	const char *runtime_dir = getenv("XDG_RUNTIME_DIR");
	if (runtime_dir != NULL && runtime_dir[0] == '/')
		return fits(snprintf(buf, size, "ipc://%s/weft/%s", runtime_dir, PROTO_SOCKET_NAME),
		            size);
	return fits(snprintf(buf, size, "ipc:///tmp/weft-%u/%s", (unsigned)geteuid(),
	                     PROTO_SOCKET_NAME),
	            size);
}

int proto_default_client_url(char *buf, size_t size)
{
	const char *from_env = getenv("WEFT_URL");
	if (from_env != NULL && from_env[0] != '\0')
		return fits(snprintf(buf, size, "%s", from_env), size);
	if (proto_default_daemon_url(buf, size) != 0)
		return -1;
	struct stat st;
	const char *path = proto_ipc_path(buf);
	if (path != NULL && stat(path, &st) == 0)
		return 0;
	return fits(snprintf(buf, size, "%s", PROTO_ROOT_URL), size);
}

const char *proto_ipc_path(const char *url)
{
	static const char scheme[] = "ipc://";
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return NULL;
	return url + sizeof(scheme) - 1;
}
