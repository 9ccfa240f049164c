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

int proto_check_socket_path(const char *path, unsigned self, int allow_root, int check_socket,
                            char *message, size_t size)
{
	char directory[4096];
	if (fits(snprintf(directory, sizeof(directory), "%s", path), sizeof(directory)) != 0) {
		snprintf(message, size, "socket path too long: %s", path);
		return -1;
	}
	char *slash = strrchr(directory, '/');
	if (slash == NULL) {
		snprintf(message, size, "socket path '%s' is not absolute; give ipc:///full/path", path);
		return -1;
	}
	if (slash == directory)
		slash[1] = '\0';
	else
		*slash = '\0';
	struct stat st;
	if (lstat(directory, &st) != 0)
		return 0; /* nothing there yet: the daemon makes it, a client finds no socket */
	if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode)) {
		snprintf(message, size,
		         "the socket directory %s is %s, not a directory; remove it (it may have been "
		         "put there by another user)",
		         directory, S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory");
		return -1;
	}
	if (st.st_uid != self && !(allow_root && st.st_uid == 0)) {
		snprintf(message, size,
		         "the socket directory %s belongs to uid %u, not to uid %u%s: another user may "
		         "have made it to receive your requests; remove it, or set XDG_RUNTIME_DIR "
		         "or --url to a directory of your own",
		         directory, (unsigned)st.st_uid, self, allow_root ? " or root" : "");
		return -1;
	}
	/* /tmp itself (sticky, root's) may hold sockets: others cannot replace them. */
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(st.st_mode & S_ISVTX && st.st_uid == 0)) {
		snprintf(message, size,
		         "the socket directory %s is writable by other users (mode %04o), so one of "
		         "them could replace the socket; chmod go-w %s",
		         directory, (unsigned)(st.st_mode & 07777), directory);
		return -1;
	}
	if (check_socket && lstat(path, &st) == 0 && st.st_uid != self && st.st_uid != 0) {
		snprintf(message, size,
		         "the socket %s belongs to uid %u, neither you (uid %u) nor root: it is not "
		         "a weftd you can trust; remove it or use another --url",
		         path, (unsigned)st.st_uid, self);
		return -1;
	}
	return 0;
}

const char *proto_ipc_path(const char *url)
{
	static const char scheme[] = "ipc://";
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
		return NULL;
	return url + sizeof(scheme) - 1;
}
