/*
 * outburst MEBIBYTES [EXIT_CODE]: writes MEBIBYTES MiB of text to stdout and
 * as much to stderr, alternating 64 KiB at a time, so that a reader that
 * drains only one pipe at a time deadlocks with it. Lines are "o...\n" on
 * stdout and "e...\n" on stderr. Exits with EXIT_CODE (default 0).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK 65536

static int write_all(int fd, const char *data, size_t length)
{
	while (length > 0) {
		ssize_t wrote = write(fd, data, length);
		if (wrote < 0 && errno == EINTR)
			continue;
		if (wrote <= 0)
			return -1;
		data += wrote;
		length -= (size_t)wrote;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char out_chunk[CHUNK], err_chunk[CHUNK];
	long mebibytes, chunks;

	if (argc < 2 || (mebibytes = strtol(argv[1], NULL, 10)) < 0) {
		fprintf(stderr, "usage: outburst MEBIBYTES [EXIT_CODE]\n");
		return 2;
	}
	memset(out_chunk, 'o', sizeof(out_chunk));
	memset(err_chunk, 'e', sizeof(err_chunk));
	for (size_t i = 63; i < CHUNK; i += 64) {
		out_chunk[i] = '\n';
		err_chunk[i] = '\n';
	}
	chunks = mebibytes * (1024 * 1024 / CHUNK);
	for (long i = 0; i < chunks; i++) {
		if (write_all(1, out_chunk, CHUNK) < 0 || write_all(2, err_chunk, CHUNK) < 0)
			return 3;
	}
	return argc > 2 ? atoi(argv[2]) : 0;
}
