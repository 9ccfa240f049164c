/*
 * make soak: a bounded long run of mixed load against a real weftd (issue 10),
 * which checks that its memory and descriptors stay flat and that it stays
 * responsive. Not part of `make check`: it takes minutes.
 *
 * Starts weftd on a private ipc socket (tests/fixture.c) with a short
 * retention and idle timeout, so that a steady load reaches a steady state
 * early, and runs together for SOAK_SECONDS (or until SOAK_JOBS jobs are in):
 *  - SOAK_THREADS clients submitting batches of echo jobs, waiting for them,
 *    fetching a result and reading the event feed;
 *  - one client submitting sleeps and waiting FIRST_COMPLETED, then for all;
 *  - one submitting 256 KiB jobs (the large-argument flood);
 *  - one following the event feed with long polls (resyncing when expired);
 *  - one keeping up to 8 connections that sent half a message and stop
 *    (the idle timeout closes them), opening another every 250 ms;
 *  - with SOAK_TRIGGER=1, one that connects and hangs up mid-handshake every
 *    second (nng 1.5.2's listener defect, #1518, which the listener guard
 *    recovers from; README, Known defects, says what it still costs);
 *  - a well-behaved probe: submit echo with wait every 50 ms on its own
 *    connection, timed; first 200 of them on the idle daemon, for the baseline.
 * A sampler reads weftd's RSS, open fds and threads every second.
 *
 * Then it checks, after dropping the first SOAK_WARMUP percent of the run:
 *  - RSS: the second half's highest sample is at most the first half's
 *    highest plus SOAK_RSS_TOLERANCE percent plus SOAK_RSS_SLACK_KB;
 *  - fds: the second half's highest count is at most the first half's
 *    highest plus SOAK_FD_SLACK (connections come and go; a leak grows);
 *  - responsiveness: every request of every client got a reply within
 *    SOAK_REPLY_LIMIT seconds, and every probe was answered `ok`;
 *  - SIGTERM stops weftd with exit status 0.
 * It prints the probe's p50/p99 (idle, first half, second half) and the RSS
 * and fd curves; the latency ratio is reported, not asserted (the machine's
 * other load moves it), unless SOAK_P99_RATIO is set.
 *
 * Runs as one Check test, so the fixture's assertions work.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/as_user.h"
#include "tests/fixture.h"
#include "tests/wire.h"

#define MAX_THREADS 16
#define MAX_SAMPLES 100000
#define MAX_PROBES 400000
#define IDLE_PROBES 200
#define HALF_OPEN_MAX 8

/* ---- settings (environment) ---- */

static double soak_seconds = 180;
static long soak_jobs = 20000000;
static int soak_threads = 4;
static double rss_tolerance = 10; /* percent */
static long rss_slack_kb = 16384;
static int fd_slack = 16;
static double warmup = 10; /* percent of the run */
static double reply_limit = 10;
static double p99_ratio = 0; /* 0: report only */
static bool with_trigger = true;

static fixture weftd;
/* As root, the flood (every loading client) and the probe run as two
 * throwaway users, so that weftd's per-user fairness applies between them;
 * otherwise (not root, or no useradd) all run as the one user the soak is,
 * and the report says so. */
static struct user flood_user, probe_user;
static bool as_users;
static char users_note[256];
static double started_at;
static atomic_bool stopping;
static atomic_long jobs_in, requests, busy_replies, lost_replies, errors_seen;
static char first_error[2048];
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

static double env_number(const char *name, double fallback)
{
	const char *text = getenv(name);
	return text != NULL && *text != '\0' ? atof(text) : fallback;
}

static void sleep_seconds(double seconds)
{
	struct timespec delay = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};
	nanosleep(&delay, NULL);
}

static bool over(void)
{
	return atomic_load(&stopping);
}

/* Makes the calling thread act as `user` from now on (when as_users), for
 * the connections it dials: the kernel takes a unix socket's peer
 * credentials from the connecting thread. Raw system calls change this
 * thread's credentials only (glibc's wrappers would change every thread's,
 * nng's too); the thread never needs root again. */
static void become(const struct user *user)
{
	if (!as_users)
		return;
	ck_assert_int_eq(syscall(SYS_setgroups, 0, NULL), 0);
	ck_assert_int_eq(syscall(SYS_setresgid, user->gid, user->gid, user->gid), 0);
	ck_assert_int_eq(syscall(SYS_setresuid, user->uid, user->uid, user->uid), 0);
}

/* ---- one connection per client ---- */

static nng_socket dial(void)
{
	nng_socket socket;
	ck_assert_int_eq(nng_req0_open(&socket), 0);
	/* Long polls here are shorter than the resend time, but be sure. */
	nng_socket_set_ms(socket, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(socket, NNG_OPT_RECVTIMEO, (nng_duration)(reply_limit * 1000));
	nng_socket_set_ms(socket, NNG_OPT_SENDTIMEO, (nng_duration)(reply_limit * 1000));
	/* Replies may be larger than nng's 1 MiB default (10,000 events). */
	nng_socket_set_size(socket, NNG_OPT_RECVMAXSZ, 64 * 1024 * 1024);
	ck_assert_int_eq(nng_dial(socket, weftd.url, NULL, 0), 0);
	return socket;
}

static void note_error(const char *what, const char *text)
{
	atomic_fetch_add(&errors_seen, 1);
	pthread_mutex_lock(&error_lock);
	/* The first three, with when they came (seconds since weftd started). */
	size_t used = strlen(first_error);
	if (atomic_load(&errors_seen) <= 3)
		snprintf(first_error + used, sizeof(first_error) - used, "%s[%.1f s] %s: %.300s",
		         used > 0 ? "; " : "", fixture_now() - started_at, what, text);
	pthread_mutex_unlock(&error_lock);
}

/* The reply (new reference), or NULL when none came within the limit (counted
 * as lost). `busy` replies are counted; they are the daemon saying no. */
static json_t *call(nng_socket socket, const char *text)
{
	char *buffer = NULL;
	size_t length = 0;
	atomic_fetch_add(&requests, 1);
	int rv = nng_send(socket, (void *)text, strlen(text), 0);
	if (rv == 0)
		rv = nng_recv(socket, &buffer, &length, NNG_FLAG_ALLOC);
	if (rv != 0) {
		atomic_fetch_add(&lost_replies, 1);
		note_error(nng_strerror(rv), text);
		return NULL;
	}
	json_t *reply = json_loadb(buffer, length, 0, NULL);
	nng_free(buffer, length);
	const char *code = wire_error_code(reply);
	if (code != NULL && strcmp(code, "busy") == 0)
		atomic_fetch_add(&busy_replies, 1);
	return reply;
}

/* ---- the load ---- */

/* Reads the event feed after *cursor (from the oldest when empty), waiting up
 * to `wait` seconds, and moves *cursor on (to `oldest` when it expired). */
static void read_events(nng_socket socket, char *cursor, size_t size, double wait)
{
	char text[256];
	int length = snprintf(text, sizeof(text), "{\"op\":\"events\",\"limit\":10000,\"wait\":%g",
	                      wait);
	if (cursor[0] != '\0')
		length += snprintf(text + length, sizeof(text) - (size_t)length, ",\"after\":\"%s\"",
		                   cursor);
	snprintf(text + length, sizeof(text) - (size_t)length, "}");
	json_t *reply = call(socket, text);
	const char *next = json_string_value(json_object_get(reply, "cursor"));
	if (next == NULL)
		next = json_string_value(json_object_get(reply, "oldest"));
	if (next != NULL)
		snprintf(cursor, size, "%s", next);
	json_decref(reply);
}

static void *submitter(void *argument)
{
	(void)argument;
	pthread_setname_np(pthread_self(), "submitter");
	become(&flood_user);
	nng_socket socket = dial();
	char cursor[64] = "";
	char text[4096];
	for (long round = 0; !over() && atomic_load(&jobs_in) < soak_jobs; round++) {
		char *at = text + sprintf(text, "{\"op\":\"submit\",\"jobs\":[");
		for (int i = 0; i < 20; i++)
			at += sprintf(at, "%s{\"fn\":\"echo\",\"args\":{\"value\":%d}}", i ? "," : "", i);
		strcpy(at, "]}");
		json_t *reply = call(socket, text);
		json_t *ids = json_object_get(reply, "ids");
		if (reply != NULL && !json_is_array(ids) && wire_error_code(reply) != NULL &&
		    strcmp(wire_error_code(reply), "busy") != 0)
			note_error("submit", wire_error_code(reply));
		if (json_is_array(ids) && json_array_size(ids) > 0) {
			atomic_fetch_add(&jobs_in, (long)json_array_size(ids));
			char *list = json_dumps(ids, JSON_COMPACT);
			snprintf(text, sizeof(text), "{\"op\":\"wait\",\"timeout\":5,\"ids\":%s}", list);
			json_decref(call(socket, text));
			snprintf(text, sizeof(text), "{\"op\":\"result\",\"id\":%lld,\"timeout\":5}",
			         (long long)json_integer_value(json_array_get(ids, 0)));
			json_decref(call(socket, text));
			free(list);
		}
		json_decref(reply);
		if (round % 10 == 0)
			read_events(socket, cursor, sizeof(cursor), 0);
	}
	nng_close(socket);
	return NULL;
}

static void *sleeper(void *argument)
{
	(void)argument;
	pthread_setname_np(pthread_self(), "sleeper");
	become(&flood_user);
	nng_socket socket = dial();
	char text[4096];
	while (!over()) {
		char *at = text + sprintf(text, "{\"op\":\"submit\",\"jobs\":[");
		for (int i = 0; i < 50; i++)
			at += sprintf(at, "%s{\"fn\":\"sleep\",\"args\":{\"seconds\":%.2f}}", i ? "," : "",
			              0.05 + 0.01 * i);
		strcpy(at, "]}");
		json_t *reply = call(socket, text);
		json_t *ids = json_object_get(reply, "ids");
		if (json_is_array(ids)) {
			atomic_fetch_add(&jobs_in, (long)json_array_size(ids));
			char *list = json_dumps(ids, JSON_COMPACT);
			snprintf(text, sizeof(text),
			         "{\"op\":\"wait\",\"timeout\":2,\"return_when\":\"FIRST_COMPLETED\",\"ids\":%s}",
			         list);
			json_decref(call(socket, text));
			snprintf(text, sizeof(text), "{\"op\":\"wait\",\"timeout\":5,\"ids\":%s}", list);
			json_decref(call(socket, text));
			free(list);
		}
		json_decref(reply);
	}
	nng_close(socket);
	return NULL;
}

static void *big(void *argument)
{
	(void)argument;
	pthread_setname_np(pthread_self(), "big");
	become(&flood_user);
	nng_socket socket = dial();
	size_t size = 256 * 1024;
	char *text = malloc(size + 128);
	int head = sprintf(text, "{\"op\":\"submit\",\"fn\":\"echo\",\"wait\":5,\"args\":{\"value\":\"");
	memset(text + head, 'x', size);
	strcpy(text + head + size, "\"}}");
	while (!over()) {
		json_t *reply = call(socket, text);
		if (json_is_true(json_object_get(reply, "ok")))
			atomic_fetch_add(&jobs_in, 1);
		json_decref(reply);
		sleep_seconds(0.1);
	}
	free(text);
	nng_close(socket);
	return NULL;
}

static void *follower(void *argument)
{
	(void)argument;
	pthread_setname_np(pthread_self(), "follower");
	become(&flood_user);
	nng_socket socket = dial();
	char cursor[64] = "";
	while (!over())
		read_events(socket, cursor, sizeof(cursor), 1);
	nng_close(socket);
	return NULL;
}

/* A raw connection to weftd's ipc socket, handshake sent (and the peer's read
 * when read_peer): the fd, or -1. */
static int raw_connect(bool whole_handshake, bool read_peer)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	snprintf(address.sun_path, sizeof(address.sun_path), "%s", weftd.url + strlen("ipc://"));
	/* SP over ipc: 0, 'S', 'P', version 0, protocol REQ0 (0x0030), 2 reserved. */
	static const unsigned char hello[8] = {0, 'S', 'P', 0, 0x00, 0x30, 0, 0};
	size_t length = whole_handshake ? sizeof(hello) : 4;
	struct timeval limit = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0 ||
	    write(fd, hello, length) != (ssize_t)length) {
		close(fd);
		return -1;
	}
	unsigned char peer[8];
	size_t got = 0;
	while (read_peer && got < sizeof(peer)) {
		ssize_t n = read(fd, peer + got, sizeof(peer) - got);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	return fd;
}

static void *half_sender(void *argument)
{
	(void)argument;
	pthread_setname_np(pthread_self(), "half-sender");
	become(&flood_user);
	int open_fds[HALF_OPEN_MAX];
	int count = 0;
	/* A frame that declares 64 KiB and carries 1 KiB of it. */
	unsigned char frame[9 + 1024];
	memset(frame, ' ', sizeof(frame));
	frame[0] = 1;
	uint64_t declared = 65536;
	for (int b = 0; b < 8; b++)
		frame[1 + b] = (unsigned char)(declared >> (56 - 8 * b));
	while (!over()) {
		if (count == HALF_OPEN_MAX) {
			close(open_fds[0]);
			memmove(open_fds, open_fds + 1, sizeof(open_fds[0]) * (HALF_OPEN_MAX - 1));
			count--;
		}
		int fd = raw_connect(true, true);
		if (fd >= 0 && write(fd, frame, sizeof(frame)) == (ssize_t)sizeof(frame))
			open_fds[count++] = fd;
		else if (fd >= 0)
			close(fd);
		sleep_seconds(0.25);
	}
	for (int i = 0; i < count; i++)
		close(open_fds[i]);
	return NULL;
}

static void *trigger(void *argument)
{
	(void)argument;
	pthread_setname_np(pthread_self(), "trigger");
	become(&flood_user);
	while (!over()) {
		int fd = raw_connect(false, false);
		if (fd >= 0)
			close(fd);
		sleep_seconds(1);
	}
	return NULL;
}

/* ---- the probe and the sampler ---- */

struct probe {
	double at, seconds;
	/* Where the time went (ms): before weftd made the job (the request's
	 * way to a handler), in weftd until the job was over, and from then to
	 * the reply in the probe's hands; NAN when the job's status was not had. */
	double before, inside, after;
	/* How long the probe's own thread was runnable but not running during
	 * the call (ms, from its schedstat): the OS scheduler's share. */
	double own_wait;
};
static struct probe probes[MAX_PROBES];
static atomic_int probe_count;
static atomic_long probes_failed;
static double idle_latency[IDLE_PROBES];

/* This thread's time spent waiting on a run queue (ns, the second field of
 * /proc/thread-self/schedstat), or -1 when the kernel does not say. */
static long long own_run_wait(void)
{
	FILE *file = fopen("/proc/thread-self/schedstat", "r");
	long long run = 0, wait = -1;
	if (file == NULL)
		return -1;
	if (fscanf(file, "%lld %lld", &run, &wait) != 2)
		wait = -1;
	fclose(file);
	return wait;
}

static double wall_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* One timed submit with wait; its breakdown from the job's status (weftd's
 * wall-clock times), asked for after the timing. */
static struct probe probe_once(nng_socket socket)
{
	struct probe probe = {.before = NAN, .inside = NAN, .after = NAN, .own_wait = NAN};
	long long waited_before = own_run_wait();
	double sent_wall = wall_now();
	double started = fixture_now();
	json_t *reply = call(socket, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
	                             "\"wait\":5}");
	probe.seconds = fixture_now() - started;
	double got_wall = wall_now();
	long long waited_after = own_run_wait();
	if (waited_before >= 0 && waited_after >= 0)
		probe.own_wait = (double)(waited_after - waited_before) / 1e6;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		atomic_fetch_add(&probes_failed, 1);
		note_error("probe", reply != NULL ? wire_error_code(reply) : "no reply");
	} else {
		char text[128];
		snprintf(text, sizeof(text), "{\"op\":\"status\",\"id\":%lld}",
		         (long long)json_integer_value(json_object_get(reply, "id")));
		json_t *status = call(socket, text);
		json_t *job = json_object_get(status, "job");
		double created = json_number_value(json_object_get(job, "created"));
		double finished = json_number_value(json_object_get(job, "finished"));
		if (created > 0 && finished > 0) {
			probe.before = (created - sent_wall) * 1000;
			probe.inside = (finished - created) * 1000;
			probe.after = (got_wall - finished) * 1000;
		}
		json_decref(status);
	}
	json_decref(reply);
	return probe;
}

static void *prober(void *argument)
{
	(void)argument;
	pthread_setname_np(pthread_self(), "probe");
	become(&probe_user);
	nng_socket socket = dial();
	while (!over()) {
		double at = fixture_now();
		struct probe probe = probe_once(socket);
		probe.at = at;
		int index = atomic_load(&probe_count);
		if (index < MAX_PROBES) {
			probes[index] = probe;
			atomic_store(&probe_count, index + 1);
		}
		sleep_seconds(0.05);
	}
	nng_close(socket);
	return NULL;
}

/* The idle baseline, as the probe's user. */
static void *idle_prober(void *argument)
{
	(void)argument;
	pthread_setname_np(pthread_self(), "probe-idle");
	become(&probe_user);
	nng_socket socket = dial();
	for (int i = 0; i < IDLE_PROBES; i++)
		idle_latency[i] = probe_once(socket).seconds * 1000;
	nng_close(socket);
	return NULL;
}

struct sample {
	double at;
	long rss_kb;
	int fds, threads;
};
static struct sample samples[MAX_SAMPLES];
static int sample_count;

static void read_status(pid_t pid, long *rss_kb, int *threads)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *file = fopen(path, "r");
	*rss_kb = -1;
	*threads = -1;
	if (file == NULL)
		return;
	while (fgets(line, sizeof(line), file) != NULL) {
		sscanf(line, "VmRSS: %ld", rss_kb);
		sscanf(line, "Threads: %d", threads);
	}
	fclose(file);
}

static int count_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *directory = opendir(path);
	if (directory == NULL)
		return -1;
	int count = 0;
	struct dirent *entry;
	while ((entry = readdir(directory)) != NULL)
		count += entry->d_name[0] != '.';
	closedir(directory);
	return count;
}

static void *sampler(void *argument)
{
	(void)argument;
	pthread_setname_np(pthread_self(), "sampler");
	while (!over() && sample_count < MAX_SAMPLES) {
		struct sample *sample = &samples[sample_count];
		sample->at = fixture_now();
		read_status(weftd.pid, &sample->rss_kb, &sample->threads);
		sample->fds = count_fds(weftd.pid);
		sample_count++;
		sleep_seconds(1);
	}
	return NULL;
}

/* A thread's scheduler figures (/proc/PID/task/TID/schedstat): time run,
 * time waited runnable on a run queue (ns), and times it was run. */
#define MAX_TASKS 256
struct task_times {
	int tid;
	char name[32];
	long long run, wait, slices;
};

static int read_tasks(pid_t pid, struct task_times *tasks)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *directory = opendir(path);
	if (directory == NULL)
		return 0;
	int count = 0;
	struct dirent *entry;
	while ((entry = readdir(directory)) != NULL && count < MAX_TASKS) {
		if (entry->d_name[0] == '.')
			continue;
		struct task_times *task = &tasks[count];
		task->tid = atoi(entry->d_name);
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, task->tid);
		FILE *file = fopen(path, "r");
		if (file == NULL)
			continue;
		if (fgets(task->name, sizeof(task->name), file) == NULL)
			task->name[0] = '\0';
		fclose(file);
		task->name[strcspn(task->name, "\n")] = '\0';
		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)pid, task->tid);
		file = fopen(path, "r");
		if (file == NULL)
			continue;
		if (fscanf(file, "%lld %lld %lld", &task->run, &task->wait, &task->slices) == 3)
			count++;
		fclose(file);
	}
	closedir(directory);
	return count;
}

/* Prints, by thread name, what weftd's threads ran and waited between the two
 * readings: CPU contention shows as wait. */
static void print_task_deltas(const char *who, const struct task_times *before, int before_count,
                              const struct task_times *after, int after_count, double seconds)
{
	struct {
		char name[32];
		int threads;
		long long run, wait, slices;
	} groups[64];
	int group_count = 0;
	for (int i = 0; i < after_count; i++) {
		const struct task_times *now = &after[i];
		long long run = now->run, wait = now->wait, slices = now->slices;
		for (int j = 0; j < before_count; j++)
			if (before[j].tid == now->tid) {
				run -= before[j].run;
				wait -= before[j].wait;
				slices -= before[j].slices;
			}
		/* Group by name with digits dropped (weft-worker-0, -1: one line). */
		char name[32];
		size_t n = 0;
		for (const char *c = now->name; *c != '\0' && n + 1 < sizeof(name); c++)
			if (*c < '0' || *c > '9')
				name[n++] = *c;
		name[n] = '\0';
		int g = 0;
		while (g < group_count && strcmp(groups[g].name, name) != 0)
			g++;
		if (g == group_count) {
			if (group_count == 64)
				continue;
			snprintf(groups[g].name, sizeof(groups[g].name), "%s", name);
			groups[g].threads = 0;
			groups[g].run = groups[g].wait = groups[g].slices = 0;
			group_count++;
		}
		groups[g].threads++;
		groups[g].run += run;
		groups[g].wait += wait;
		groups[g].slices += slices;
	}
	printf("soak: %s threads under load: name (count)  cpu %%  runnable-waiting %%  wait per run (ms)\n",
	       who);
	for (int g = 0; g < group_count; g++)
		if (groups[g].run > 0)
			printf("soak:   %-18s (%2d) %6.1f %6.1f %8.3f\n", groups[g].name, groups[g].threads,
			       (double)groups[g].run / 1e7 / seconds, (double)groups[g].wait / 1e7 / seconds,
			       groups[g].slices > 0 ? (double)groups[g].wait / 1e6 / (double)groups[g].slices
			                            : 0.0);
}

/* ---- the report ---- */

static int compare_doubles(const void *left, const void *right)
{
	double a = *(const double *)left, b = *(const double *)right;
	return a < b ? -1 : a > b;
}

static double percentile(double *values, int count, double p)
{
	if (count == 0)
		return NAN;
	qsort(values, (size_t)count, sizeof(*values), compare_doubles);
	int index = (int)ceil(p / 100.0 * count) - 1;
	return values[index < 0 ? 0 : index];
}

/* p50 and p99 (ms) of the probes made in [from, to). */
static void probe_percentiles(double from, double to, double *p50, double *p99, int *count)
{
	int total = atomic_load(&probe_count);
	double *values = malloc(sizeof(*values) * (size_t)(total + 1));
	int n = 0;
	for (int i = 0; i < total; i++)
		if (probes[i].at >= from && probes[i].at < to)
			values[n++] = probes[i].seconds * 1000;
	*p50 = percentile(values, n, 50);
	*p99 = percentile(values, n, 99);
	*count = n;
	free(values);
}

static int compare_probes_slowest_first(const void *left, const void *right)
{
	double a = ((const struct probe *)left)->seconds, b = ((const struct probe *)right)->seconds;
	return a > b ? -1 : a < b;
}

/* Where the slowest 1% of the probes made from `from` on spent their time. */
static void print_slowest(double from, double started)
{
	int total = atomic_load(&probe_count);
	struct probe *list = malloc(sizeof(*list) * (size_t)(total + 1));
	int n = 0;
	for (int i = 0; i < total; i++)
		if (probes[i].at >= from)
			list[n++] = probes[i];
	qsort(list, (size_t)n, sizeof(*list), compare_probes_slowest_first);
	int top = n / 100 > 5 ? n / 100 : (n < 5 ? n : 5);
	double sums[4] = {0};
	int counted = 0;
	for (int i = 0; i < top; i++)
		if (!isnan(list[i].before)) {
			sums[0] += list[i].before;
			sums[1] += list[i].inside;
			sums[2] += list[i].after;
			sums[3] += isnan(list[i].own_wait) ? 0 : list[i].own_wait;
			counted++;
		}
	if (counted > 0)
		printf("soak: slowest %d probes, mean ms: to the job's creation %.2f, job %.2f, reply to "
		       "the probe %.2f (of which the probe thread runnable, not running: %.2f)\n",
		       counted, sums[0] / counted, sums[1] / counted, sums[2] / counted,
		       sums[3] / counted);
	for (int i = 0; i < top && i < 8; i++)
		printf("soak:   at %6.1f s: %7.2f ms = %.2f + %.2f + %.2f (runnable %.2f)\n",
		       list[i].at - started, list[i].seconds * 1000, list[i].before, list[i].inside,
		       list[i].after, list[i].own_wait);
	free(list);
}

START_TEST(weftd_stays_flat_and_responsive_under_a_long_mixed_load)
{
	const char *const args[] = {"--retain", "5", "--idle-timeout", "2", "--events-max", "20000",
	                            "--workers", "2", NULL};
	started_at = fixture_now();
	fixture_start(&weftd, args);
	/* The throwaway users must reach the socket. */
	if (as_users)
		ck_assert_int_eq(chmod(weftd.directory, 0755), 0);
	/* The idle baseline: the probe alone. */
	pthread_t idle;
	pthread_create(&idle, NULL, idle_prober, NULL);
	pthread_join(idle, NULL);
	double idle_p50 = percentile(idle_latency, IDLE_PROBES, 50);
	double idle_p99 = percentile(idle_latency, IDLE_PROBES, 99);

	double started = fixture_now();
	static struct task_times tasks_before[MAX_TASKS], tasks_after[MAX_TASKS];
	static struct task_times own_before[MAX_TASKS], own_after[MAX_TASKS];
	int tasks_before_count = read_tasks(weftd.pid, tasks_before);
	int own_before_count = read_tasks(getpid(), own_before);
	pthread_t threads[MAX_THREADS + 8];
	int count = 0;
	pthread_create(&threads[count++], NULL, sampler, NULL);
	pthread_create(&threads[count++], NULL, prober, NULL);
	for (int i = 0; i < soak_threads; i++)
		pthread_create(&threads[count++], NULL, submitter, NULL);
	pthread_create(&threads[count++], NULL, sleeper, NULL);
	pthread_create(&threads[count++], NULL, big, NULL);
	pthread_create(&threads[count++], NULL, follower, NULL);
	pthread_create(&threads[count++], NULL, half_sender, NULL);
	if (with_trigger)
		pthread_create(&threads[count++], NULL, trigger, NULL);
	while (fixture_now() - started < soak_seconds && atomic_load(&jobs_in) < soak_jobs &&
	       fixture_alive(&weftd))
		sleep_seconds(0.5);
	double ended = fixture_now();
	int tasks_after_count = read_tasks(weftd.pid, tasks_after);
	int own_after_count = read_tasks(getpid(), own_after);
	atomic_store(&stopping, true);
	for (int i = 0; i < count; i++)
		pthread_join(threads[i], NULL);
	ck_assert_msg(fixture_alive(&weftd), "weftd died during the soak");

	/* The halves, after the warm-up. */
	double from = started + (ended - started) * warmup / 100.0;
	double middle = from + (ended - from) / 2;
	long rss_first = 0, rss_second = 0;
	int fds_first = 0, fds_second = 0, threads_first = 0, threads_second = 0;
	printf("soak: %s\n", users_note);
	printf("soak: %.0f s, %ld jobs, %ld requests (%ld busy), %d samples\n", ended - started,
	       atomic_load(&jobs_in), atomic_load(&requests), atomic_load(&busy_replies),
	       sample_count);
	printf("soak: t(s)  rss(kB)  fds  threads\n");
	int step = sample_count / 20 > 0 ? sample_count / 20 : 1;
	for (int i = 0; i < sample_count; i++) {
		const struct sample *sample = &samples[i];
		if (i % step == 0 || i == sample_count - 1)
			printf("soak: %5.0f %8ld %4d %4d\n", sample->at - started, sample->rss_kb,
			       sample->fds, sample->threads);
		if (sample->at < from)
			continue;
		bool first = sample->at < middle;
		long *rss = first ? &rss_first : &rss_second;
		int *fds = first ? &fds_first : &fds_second;
		int *threads_max = first ? &threads_first : &threads_second;
		if (sample->rss_kb > *rss)
			*rss = sample->rss_kb;
		if (sample->fds > *fds)
			*fds = sample->fds;
		if (sample->threads > *threads_max)
			*threads_max = sample->threads;
	}
	double p50_first, p99_first, p50_second, p99_second;
	int n_first, n_second;
	probe_percentiles(from, middle, &p50_first, &p99_first, &n_first);
	probe_percentiles(middle, ended + 1, &p50_second, &p99_second, &n_second);
	printf("soak: probe submit+result (ms)   p50     p99    count\n");
	printf("soak:   idle                  %7.2f %7.2f %6d\n", idle_p50, idle_p99, IDLE_PROBES);
	printf("soak:   loaded, first half    %7.2f %7.2f %6d\n", p50_first, p99_first, n_first);
	printf("soak:   loaded, second half   %7.2f %7.2f %6d\n", p50_second, p99_second, n_second);
	printf("soak:   p99 loaded / idle     %7.1f x\n",
	       (p99_first > p99_second ? p99_first : p99_second) / idle_p99);
	print_slowest(from, started);
	print_task_deltas("weftd's", tasks_before, tasks_before_count, tasks_after,
	                  tasks_after_count, ended - started);
	print_task_deltas("the soak's", own_before, own_before_count, own_after, own_after_count,
	                  ended - started);
	printf("soak: highest rss %ld kB then %ld kB; fds %d then %d; threads %d then %d\n",
	       rss_first, rss_second, fds_first, fds_second, threads_first, threads_second);

	fflush(stdout);
	ck_assert_msg(atomic_load(&lost_replies) == 0 && atomic_load(&probes_failed) == 0,
	              "%ld requests got no reply (within %.0f s) and %ld probes failed; first: %s",
	              atomic_load(&lost_replies), reply_limit, atomic_load(&probes_failed),
	              first_error);
	ck_assert_msg(n_first > 0 && n_second > 0, "the probe made no requests in a half");
	long rss_bound = (long)(rss_first * (1 + rss_tolerance / 100.0)) + rss_slack_kb;
	ck_assert_msg(rss_second <= rss_bound,
	              "RSS grew: %ld kB at most in the first half, %ld kB in the second (bound %ld: "
	              "+%.0f%% +%ld kB)",
	              rss_first, rss_second, rss_bound, rss_tolerance, rss_slack_kb);
	ck_assert_msg(fds_second <= fds_first + fd_slack,
	              "fds grew: %d at most in the first half, %d in the second (slack %d)", fds_first,
	              fds_second, fd_slack);
	ck_assert_msg(threads_second <= threads_first, "threads grew: %d, then %d", threads_first,
	              threads_second);
	if (p99_ratio > 0)
		ck_assert_msg(p99_second <= p99_ratio * idle_p99 && p99_first <= p99_ratio * idle_p99,
		              "the probe's p99 (%.2f, %.2f ms) passed %.1f x idle (%.2f ms)", p99_first,
		              p99_second, p99_ratio, idle_p99);
	fixture_stop(&weftd);
}
END_TEST

int main(void)
{
	soak_seconds = env_number("SOAK_SECONDS", soak_seconds);
	soak_jobs = (long)env_number("SOAK_JOBS", (double)soak_jobs);
	soak_threads = (int)env_number("SOAK_THREADS", soak_threads);
	if (soak_threads < 1 || soak_threads > MAX_THREADS)
		soak_threads = 4;
	rss_tolerance = env_number("SOAK_RSS_TOLERANCE", rss_tolerance);
	rss_slack_kb = (long)env_number("SOAK_RSS_SLACK_KB", (double)rss_slack_kb);
	fd_slack = (int)env_number("SOAK_FD_SLACK", fd_slack);
	warmup = env_number("SOAK_WARMUP", warmup);
	reply_limit = env_number("SOAK_REPLY_LIMIT", reply_limit);
	p99_ratio = env_number("SOAK_P99_RATIO", p99_ratio);
	with_trigger = env_number("SOAK_TRIGGER", 0) != 0;
	printf("soak: %.0f s at most, %ld jobs at most, %d submitting clients; tolerances: rss "
	       "+%.0f%% +%ld kB, fds +%d, warm-up %.0f%%\n",
	       soak_seconds, soak_jobs, soak_threads, rss_tolerance, rss_slack_kb, fd_slack, warmup);
	fflush(stdout);
	/* The flood and the probe as two throwaway users when root can make them. */
	if (geteuid() == 0 && as_user_shell("command -v useradd && command -v userdel") == 0 &&
	    as_user_create(&flood_user, "wsf") && as_user_create(&probe_user, "wsp")) {
		as_users = true;
		setenv("TMPDIR", "/tmp", 1); /* other users must reach the fixture's socket */
		snprintf(users_note, sizeof(users_note),
		         "the flood runs as user %s (uid %u), the probe as %s (uid %u): per-user "
		         "fairness applies between them",
		         flood_user.name, (unsigned)flood_user.uid, probe_user.name,
		         (unsigned)probe_user.uid);
	} else {
		snprintf(users_note, sizeof(users_note),
		         "every client runs as uid %u (not root, or no useradd): per-user fairness "
		         "does not apply between the flood and the probe",
		         (unsigned)geteuid());
	}
	Suite *suite = suite_create("soak");
	TCase *tcase = tcase_create("soak");
	tcase_set_timeout(tcase, soak_seconds + 120);
	tcase_add_test(tcase, weftd_stays_flat_and_responsive_under_a_long_mixed_load);
	suite_add_tcase(suite, tcase);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	as_user_remove(&flood_user);
	as_user_remove(&probe_user);
	return failed == 0 ? 0 : 1;
}
