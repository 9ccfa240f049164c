/*
 * The job-server peer: drives beanstalkd over its text protocol on loopback
 * TCP. One job is put -> reserve -> delete; its latency runs from writing the
 * put to reading DELETED.
 *
 * With --inflight W, up to W jobs are in flight on one connection, pipelined:
 * replies come back in command order, so a FIFO of expected replies tells what
 * each one answers. Every INSERTED is followed by a reserve (there is always a
 * ready job for it: no more reserves than puts are ever issued), every RESERVED
 * by a delete of the job it names, and a put is issued whenever a job finishes.
 * W = 1 is the one-at-a-time case (three round trips per job).
 *
 * The job body is the job's index in decimal; a reserved body is checked
 * against a job that was put and not yet reserved.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/ipc/measure.h"

#define BEANSTALK_BUFFER_SIZE (256 * 1024)
#define BEANSTALK_TIMEOUT_MS 10000

enum beanstalk_expect { BEANSTALK_INSERTED, BEANSTALK_RESERVED, BEANSTALK_DELETED };

/* A reply the connection waits for, and the job it concerns (unknown for a
 * reserve until its reply names the job). */
struct beanstalk_pending {
	enum beanstalk_expect kind;
	uint64_t index;
};

/* One connection and the state of its pipeline; single-threaded. Owns every buffer. */
struct beanstalk {
	int fd;
	char *out; /* commands not yet written */
	size_t out_length;
	char *in; /* bytes read and not yet parsed: in[in_start .. in_end) */
	size_t in_start;
	size_t in_end;
	/* Ring of the replies expected, oldest first. */
	struct beanstalk_pending *expect;
	size_t expect_capacity;
	size_t expect_head;
	size_t expect_count;
	uint64_t count;	  /* jobs in this run */
	uint64_t *put_at; /* per job index: ns when its put was queued */
	bool *reserved;	  /* per job index: already reserved once */
};

static int beanstalk_connect(unsigned port, int *out)
{
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int one = 1;
	int fd;

	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		perror("beanstalk: socket");
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
		fprintf(stderr, "beanstalk: cannot connect to 127.0.0.1:%u: %s\n", port, strerror(errno));
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*out = fd;
	return 0;
}

static int beanstalk_append(struct beanstalk *connection, const char *format, unsigned long long a,
			    unsigned long long b)
{
	int length;
	size_t room = BEANSTALK_BUFFER_SIZE - connection->out_length;

	length = snprintf(connection->out + connection->out_length, room, format, a, b);
	if (length < 0 || (size_t)length >= room) {
		fprintf(stderr, "beanstalk: command buffer full\n");
		return -1;
	}
	connection->out_length += (size_t)length;
	return 0;
}

static int beanstalk_expect_push(struct beanstalk *connection, enum beanstalk_expect kind,
				 uint64_t index)
{
	struct beanstalk_pending *slot;

	if (connection->expect_count == connection->expect_capacity) {
		fprintf(stderr, "beanstalk: too many replies outstanding\n");
		return -1;
	}
	slot = &connection->expect[(connection->expect_head + connection->expect_count) %
				   connection->expect_capacity];
	slot->kind = kind;
	slot->index = index;
	connection->expect_count++;
	return 0;
}

static int beanstalk_flush(struct beanstalk *connection)
{
	size_t written = 0;

	while (written < connection->out_length) {
		ssize_t n = write(connection->fd, connection->out + written,
				  connection->out_length - written);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "beanstalk: write: %s\n", strerror(errno));
			return -1;
		}
		written += (size_t)n;
	}
	connection->out_length = 0;
	return 0;
}

/* Reads what is available (waiting at most BEANSTALK_TIMEOUT_MS for the first byte). */
static int beanstalk_fill(struct beanstalk *connection)
{
	struct pollfd poll_fd = {.fd = connection->fd, .events = POLLIN};
	ssize_t n;
	int ready;

	if (connection->in_start > 0) {
		memmove(connection->in, connection->in + connection->in_start,
			connection->in_end - connection->in_start);
		connection->in_end -= connection->in_start;
		connection->in_start = 0;
	}
	if (connection->in_end == BEANSTALK_BUFFER_SIZE) {
		fprintf(stderr, "beanstalk: reply too long\n");
		return -1;
	}
	do
		ready = poll(&poll_fd, 1, BEANSTALK_TIMEOUT_MS);
	while (ready < 0 && errno == EINTR);
	if (ready == 0) {
		fprintf(stderr, "beanstalk: no reply within %d ms\n", BEANSTALK_TIMEOUT_MS);
		return -1;
	}
	n = read(connection->fd, connection->in + connection->in_end,
		 BEANSTALK_BUFFER_SIZE - connection->in_end);
	if (n <= 0) {
		fprintf(stderr, "beanstalk: read: %s\n", n == 0 ? "connection closed" : strerror(errno));
		return -1;
	}
	connection->in_end += (size_t)n;
	return 0;
}

/* The next complete line (without CRLF, NUL-terminated in place), or NULL. */
static char *beanstalk_line(struct beanstalk *connection, size_t *line_end)
{
	char *start = connection->in + connection->in_start;
	size_t available = connection->in_end - connection->in_start;
	char *crlf = memmem(start, available, "\r\n", 2);

	if (crlf == NULL)
		return NULL;
	*line_end = connection->in_start + (size_t)(crlf - start) + 2;
	*crlf = '\0';
	return start;
}

/* Handles the oldest expected reply if it is buffered whole. Returns 1 and the
 * job's index when a job finished, 0 when a reply was handled or when more
 * bytes are needed (*need_more), -1 on a wrong reply. */
static int beanstalk_handle(struct beanstalk *connection, uint64_t *finished_index, bool *need_more)
{
	struct beanstalk_pending pending = connection->expect[connection->expect_head];
	size_t line_end;
	char *line = beanstalk_line(connection, &line_end);
	unsigned long long id;
	size_t body_length;
	int consumed = 0;

	*need_more = false;
	if (line == NULL) {
		*need_more = true;
		return 0;
	}
	switch (pending.kind) {
	case BEANSTALK_INSERTED:
		if (sscanf(line, "INSERTED %llu", &id) != 1)
			goto wrong;
		connection->in_start = line_end;
		if (beanstalk_append(connection, "reserve-with-timeout %llu\r\n", 10, 0) != 0 ||
		    beanstalk_expect_push(connection, BEANSTALK_RESERVED, 0) != 0)
			return -1;
		break;
	case BEANSTALK_RESERVED: {
		char body[32];
		char *end;
		unsigned long long index;

		if (sscanf(line, "RESERVED %llu %zu%n", &id, &body_length, &consumed) != 2 ||
		    line[consumed] != '\0' || body_length == 0 || body_length >= sizeof(body))
			goto wrong;
		if (connection->in_end - line_end < body_length + 2) {
			/* Put the CR back so that the line is found again with its body. */
			line[strlen(line)] = '\r';
			*need_more = true;
			return 0;
		}
		memcpy(body, connection->in + line_end, body_length);
		body[body_length] = '\0';
		index = strtoull(body, &end, 10);
		if (*end != '\0' || index >= connection->count || connection->reserved[index]) {
			fprintf(stderr, "beanstalk: reserved job %llu has an unexpected body '%s'\n", id,
				body);
			return -1;
		}
		connection->reserved[index] = true;
		connection->in_start = line_end + body_length + 2;
		if (beanstalk_append(connection, "delete %llu\r\n", id, 0) != 0 ||
		    beanstalk_expect_push(connection, BEANSTALK_DELETED, index) != 0)
			return -1;
		break;
	}
	case BEANSTALK_DELETED:
		if (strcmp(line, "DELETED") != 0)
			goto wrong;
		connection->in_start = line_end;
		break;
	}
	connection->expect_head = (connection->expect_head + 1) % connection->expect_capacity;
	connection->expect_count--;
	if (pending.kind == BEANSTALK_DELETED) {
		*finished_index = pending.index;
		return 1;
	}
	return 0;
wrong:
	fprintf(stderr, "beanstalk: unexpected reply '%s'\n", line);
	return -1;
}

/* Runs count jobs (fewer if seconds pass first) with up to inflight at once.
 * Returns 0 with the number finished and the seconds taken, or -1. */
static int beanstalk_run(struct beanstalk *connection, unsigned inflight, double seconds,
			 struct measure *measure, uint64_t *finished, double *elapsed)
{
	uint64_t started_at = measure_now();
	uint64_t deadline = started_at + (uint64_t)(seconds * 1e9);
	uint64_t next = 0;
	uint64_t done = 0;
	unsigned in_flight = 0;

	for (;;) {
		bool need_more = false;

		while (in_flight < inflight && next < connection->count && measure_now() < deadline) {
			char body[32];
			int length = snprintf(body, sizeof(body), "%llu", (unsigned long long)next);

			connection->put_at[next] = measure_now();
			if (beanstalk_append(connection, "put 0 0 60 %llu\r\n%llu\r\n",
					     (unsigned long long)length, (unsigned long long)next) != 0)
				return -1;
			if (beanstalk_expect_push(connection, BEANSTALK_INSERTED, next) != 0)
				return -1;
			next++;
			in_flight++;
		}
		if (in_flight == 0)
			break;
		if (beanstalk_flush(connection) != 0)
			return -1;
		/* Handle every whole reply buffered (queueing the commands they call for),
		 * then refill the pipeline; read more only when nothing is left to send. */
		while (connection->expect_count > 0) {
			uint64_t index;
			int rv = beanstalk_handle(connection, &index, &need_more);

			if (rv < 0)
				return -1;
			if (need_more)
				break;
			if (rv == 1) {
				if (measure != NULL)
					measure_add(measure, measure_now() - connection->put_at[index]);
				done++;
				in_flight--;
			}
		}
		if (need_more && connection->out_length == 0 && beanstalk_fill(connection) != 0)
			return -1;
	}
	*finished = done;
	*elapsed = (double)(measure_now() - started_at) / 1e9;
	return 0;
}

static int beanstalk_probe(unsigned port)
{
	struct pollfd poll_fd = {.events = POLLIN};
	char buffer[256];
	ssize_t n;
	int fd;

	if (beanstalk_connect(port, &fd) != 0)
		return 1;
	if (write(fd, "list-tubes\r\n", 12) != 12) {
		close(fd);
		return 1;
	}
	poll_fd.fd = fd;
	if (poll(&poll_fd, 1, 1000) != 1 || (n = read(fd, buffer, sizeof(buffer) - 1)) <= 0) {
		close(fd);
		return 1;
	}
	buffer[n] = '\0';
	close(fd);
	if (strncmp(buffer, "OK ", 3) != 0) {
		fprintf(stderr, "beanstalk: 127.0.0.1:%u is not beanstalkd (it answered '%.40s')\n", port,
			buffer);
		return 1;
	}
	return 0;
}

static void beanstalk_usage(FILE *stream)
{
	fprintf(stream,
		"usage: beanstalk_bench --port PORT [options]\n"
		"  Puts, reserves and deletes jobs on beanstalkd at 127.0.0.1:PORT.\n"
		"  --probe           only check that beanstalkd answers there (exit 0 if so)\n"
		"  --bench NAME      name in the RESULT line (default ipc_serial)\n"
		"  --impl NAME       implementation name in the RESULT line (default beanstalkd)\n"
		"  --inflight N      jobs in flight, pipelined on one connection (default 1)\n"
		"  --count N         measured jobs at most (default 10000)\n"
		"  --seconds S       stop starting jobs after S seconds (default 10)\n"
		"  --warmup N        unmeasured jobs first (default 500)\n"
		"  --server-pid PID  report the server's peak resident set\n");
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"port", required_argument, NULL, 'P'},	   {"probe", no_argument, NULL, 'r'},
		{"bench", required_argument, NULL, 'b'},   {"impl", required_argument, NULL, 'i'},
		{"inflight", required_argument, NULL, 'f'}, {"count", required_argument, NULL, 'n'},
		{"seconds", required_argument, NULL, 's'}, {"warmup", required_argument, NULL, 'w'},
		{"server-pid", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	const char *bench = "ipc_serial";
	const char *impl = "beanstalkd";
	uint64_t port = 0;
	struct measure_options common = {.inflight = 1, .count = 10000, .seconds = 10, .warmup = 500};
	uint64_t capacity;
	uint64_t finished;
	double elapsed;
	bool probe = false;
	struct beanstalk connection = {.fd = -1};
	struct measure measure = {.samples = NULL};
	int option;
	int rv = 1;

	while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (option) {
		case 'P':
			if (measure_parse_count("--port", optarg, &port) != 0 || port > 65535)
				return 2;
			break;
		case 'r': probe = true; break;
		case 'b': bench = optarg; break;
		case 'i': impl = optarg; break;
		case 'h': beanstalk_usage(stdout); return 0;
		default: {
			int parsed = measure_parse_option(option, optarg, &common);
			if (parsed < 0)
				return 2;
			if (parsed == 0) {
				beanstalk_usage(stderr);
				return 2;
			}
		}
		}
	}
	if (port == 0 || optind != argc) {
		beanstalk_usage(stderr);
		return 2;
	}
	if (probe)
		return beanstalk_probe((unsigned)port);

	capacity = common.count > common.warmup ? common.count : common.warmup;
	connection.expect_capacity = 3 * common.inflight + 8;
	connection.out = malloc(BEANSTALK_BUFFER_SIZE);
	connection.in = malloc(BEANSTALK_BUFFER_SIZE);
	connection.expect = calloc(connection.expect_capacity, sizeof(*connection.expect));
	connection.put_at = calloc(capacity, sizeof(*connection.put_at));
	connection.reserved = calloc(capacity, sizeof(*connection.reserved));
	if (connection.out == NULL || connection.in == NULL || connection.expect == NULL ||
	    connection.put_at == NULL || connection.reserved == NULL ||
	    measure_init(&measure, common.count) != 0) {
		fprintf(stderr, "beanstalk: out of memory\n");
		goto done;
	}
	if (beanstalk_connect((unsigned)port, &connection.fd) != 0)
		goto done;

	connection.count = common.warmup;
	if (beanstalk_run(&connection, (unsigned)common.inflight, common.seconds, NULL, &finished,
			  &elapsed) != 0)
		goto done;
	memset(connection.reserved, 0, capacity * sizeof(*connection.reserved));
	connection.count = common.count;
	if (beanstalk_run(&connection, (unsigned)common.inflight, common.seconds, &measure, &finished,
			  &elapsed) != 0)
		goto done;
	measure_print(&measure, bench, impl, finished, elapsed, (pid_t)common.server_pid);
	rv = 0;
done:
	if (connection.fd >= 0)
		close(connection.fd);
	measure_fini(&measure);
	free(connection.reserved);
	free(connection.put_at);
	free(connection.expect);
	free(connection.in);
	free(connection.out);
	return rv;
}
