/* Copying a job's output as it is made; see stream.h. */
#include "cli/stream.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Bytes asked for per request: large enough that a fast command costs few
 * round trips, and within what weftd returns (PROTO_OUTPUT_MAX_MAX). */
#define STREAM_READ_MAX (4 * 1024 * 1024)
/* The long poll of a follower; weftd answers as soon as bytes come. */
#define STREAM_WAIT_SECONDS 30.0
/* How far back --tail looks for its lines. */
#define STREAM_TAIL_BYTES (4 * 1024 * 1024)

static bool write_all(int fd, const unsigned char *data, size_t length)
{
	while (length > 0) {
		ssize_t wrote = write(fd, data, length);
		if (wrote < 0 && errno == EINTR)
			continue;
		if (wrote <= 0)
			return false;
		data += wrote;
		length -= (size_t)wrote;
	}
	return true;
}

/* Writes output's bytes from `skip` on, each run to its stream's descriptor. */
static bool write_output(const weft_output *output, weft_stream stream, size_t skip)
{
	if (stream != WEFT_STREAM_BOTH)
		return skip >= output->length ||
		       write_all(STDOUT_FILENO, output->data + skip, output->length - skip);
	size_t at = 0;
	for (size_t i = 0; i < output->run_count; i++) {
		size_t start = at, end = at + output->runs[i].length;
		at = end;
		if (end <= skip)
			continue;
		if (start < skip)
			start = skip;
		int fd = output->runs[i].stream == WEFT_STREAM_STDERR ? STDERR_FILENO : STDOUT_FILENO;
		if (!write_all(fd, output->data + start, end - start))
			return false;
	}
	return true;
}

/* Where the last `lines` lines of data begin (a final line without '\n'
 * counts as one). */
static size_t tail_start(const unsigned char *data, size_t length, long long lines)
{
	size_t at = length;
	if (at > 0 && data[at - 1] == '\n')
		at--;
	while (at > 0) {
		if (data[at - 1] == '\n' && --lines == 0)
			return at;
		at--;
	}
	return 0;
}

int cli_stream_copy(weft_client *client, uint64_t id, weft_stream stream, int64_t offset,
                    bool follow, long long tail_lines, cli_stream_state *state)
{
	bool first = true;
	memset(state, 0, sizeof(*state));
	if (tail_lines > 0)
		offset = -(int64_t)STREAM_TAIL_BYTES;
	for (;;) {
		weft_output *output = NULL;
		double wait = follow && !(first && tail_lines > 0) ? STREAM_WAIT_SECONDS : 0;
		int rv = weft_output_read(client, id, stream, offset, STREAM_READ_MAX, wait, &output);
		if (rv != WEFT_OK)
			return rv;
		size_t skip = 0;
		if (first && tail_lines > 0)
			skip = tail_start(output->data, output->length, tail_lines);
		else if (output->lost > 0)
			fprintf(stderr,
			        "weft: %llu bytes of job %llu's output were lost: weftd no longer "
			        "kept them when they were read (its --output-window)\n",
			        (unsigned long long)output->lost, (unsigned long long)id);
		if (!(first && tail_lines > 0))
			state->lost += output->lost;
		first = false;
		bool written = write_output(output, stream, skip);
		state->shown += output->length - (skip < output->length ? skip : output->length);
		state->eof = output->eof;
		state->started = output->started;
		bool caught_up = output->length == 0;
		offset = (int64_t)output->next;
		weft_output_free(output);
		if (!written) {
			fprintf(stderr, "weft: cannot write job %llu's output here: %s\n",
			        (unsigned long long)id, strerror(errno));
			return CLI_STREAM_WRITE_FAILED;
		}
		if (state->eof || (!follow && caught_up))
			return WEFT_OK;
	}
}
