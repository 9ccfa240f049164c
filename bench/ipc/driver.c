/*
 * Slot life: start -> SEND -> (callback) -> RECV -> (callback) -> reply():
 *   more steps   -> SEND again
 *   op complete  -> record latency, claim the next index, start it or go idle.
 * The last slot to go idle wakes the caller of driver_run through a condition
 * variable; driver_run then stops every aio (which waits for running callbacks)
 * before freeing anything.
 */
#include "bench/ipc/driver.h"

#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct driver_run;

struct driver_lane {
	struct driver_run *run;
	nng_ctx context;
	nng_aio *aio;
	bool sending; /* which half of the round trip the aio is doing */
	struct driver_slot slot;
};

struct driver_run {
	const struct driver_ops *ops;
	void *context;
	struct measure *measure;
	uint64_t count;
	uint64_t deadline; /* ns: no operation starts after it */
	atomic_uint_fast64_t next_index;
	atomic_uint_fast64_t completed;
	atomic_bool failed;
	/* idle and last_finish are guarded by lock; the caller sleeps on wake. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	unsigned idle;
	uint64_t last_finish;
};

nng_msg *driver_message(const char *text, size_t length)
{
	nng_msg *message;

	if (nng_msg_alloc(&message, 0) != 0)
		return NULL;
	if (nng_msg_append(message, text, length) != 0) {
		nng_msg_free(message);
		return NULL;
	}
	return message;
}

int driver_dial(const char *url, nng_socket *out)
{
	nng_socket socket;
	int rv;

	if ((rv = nng_req0_open(&socket)) != 0) {
		fprintf(stderr, "cannot open an nng REQ socket: %s\n", nng_strerror(rv));
		return rv;
	}
	if ((rv = nng_socket_set_ms(socket, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_size(socket, NNG_OPT_RECVMAXSZ, 0)) != 0) {
		fprintf(stderr, "cannot set REQ socket options: %s\n", nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_dial(socket, url, NULL, 0)) != 0) {
		fprintf(stderr, "cannot connect to %s: %s\n", url, nng_strerror(rv));
		goto fail;
	}
	*out = socket;
	return 0;
fail:
	nng_close(socket);
	return rv;
}

static void lane_go_idle(struct driver_lane *lane)
{
	struct driver_run *run = lane->run;

	pthread_mutex_lock(&run->lock);
	run->idle++;
	run->last_finish = measure_now();
	pthread_cond_signal(&run->wake);
	pthread_mutex_unlock(&run->lock);
}

static void lane_send(struct driver_lane *lane, nng_msg *request)
{
	lane->sending = true;
	nng_aio_set_msg(lane->aio, request);
	nng_ctx_send(lane->context, lane->aio);
}

/* Claims the next operation and sends its first request; goes idle when there
 * is none left, the time is up, or the run has failed. */
static void lane_start_next(struct driver_lane *lane)
{
	struct driver_run *run = lane->run;
	nng_msg *request = NULL;
	uint64_t index;

	if (atomic_load(&run->failed) || measure_now() >= run->deadline) {
		lane_go_idle(lane);
		return;
	}
	index = atomic_fetch_add(&run->next_index, 1);
	if (index >= run->count) {
		lane_go_idle(lane);
		return;
	}
	lane->slot.index = index;
	lane->slot.step = 0;
	lane->slot.job_id = 0;
	lane->slot.started = measure_now();
	if (run->ops->start(run->context, &lane->slot, &request) != 0) {
		atomic_store(&run->failed, true);
		lane_go_idle(lane);
		return;
	}
	lane_send(lane, request);
}

static void lane_callback(void *argument)
{
	struct driver_lane *lane = argument;
	struct driver_run *run = lane->run;
	nng_msg *reply;
	nng_msg *next = NULL;
	int rv = nng_aio_result(lane->aio);

	if (lane->sending) {
		if (rv != 0) {
			/* A message that was not sent is still ours. */
			nng_msg_free(nng_aio_get_msg(lane->aio));
			fprintf(stderr, "send failed (operation %llu): %s\n",
				(unsigned long long)lane->slot.index, nng_strerror(rv));
			atomic_store(&run->failed, true);
			lane_go_idle(lane);
			return;
		}
		lane->sending = false;
		nng_ctx_recv(lane->context, lane->aio);
		return;
	}
	if (rv != 0) {
		fprintf(stderr, "receive failed (operation %llu): %s\n",
			(unsigned long long)lane->slot.index, nng_strerror(rv));
		atomic_store(&run->failed, true);
		lane_go_idle(lane);
		return;
	}
	reply = nng_aio_get_msg(lane->aio);
	lane->slot.step++;
	rv = run->ops->reply(run->context, &lane->slot, reply, &next);
	nng_msg_free(reply);
	if (rv != 0) {
		atomic_store(&run->failed, true);
		lane_go_idle(lane);
		return;
	}
	if (next != NULL) {
		lane_send(lane, next);
		return;
	}
	if (run->measure != NULL)
		measure_add(run->measure, measure_now() - lane->slot.started);
	atomic_fetch_add(&run->completed, 1);
	lane_start_next(lane);
}

int driver_run(nng_socket socket, const struct driver_ops *ops, void *context,
	       const struct driver_options *options, struct measure *measure,
	       uint64_t *completed, double *seconds)
{
	struct driver_run run = {.ops = ops, .context = context, .measure = measure};
	struct driver_lane *lanes;
	unsigned opened = 0;
	unsigned lane_count = options->inflight ? options->inflight : 1;
	uint64_t started;
	struct timespec limit;
	int rv = -1;

	run.count = options->count;
	atomic_init(&run.next_index, 0);
	atomic_init(&run.completed, 0);
	atomic_init(&run.failed, false);
	pthread_mutex_init(&run.lock, NULL);
	pthread_cond_init(&run.wake, NULL);
	if ((lanes = calloc(lane_count, sizeof(*lanes))) == NULL) {
		fprintf(stderr, "out of memory\n");
		goto fail_lanes;
	}
	for (; opened < lane_count; opened++) {
		struct driver_lane *lane = &lanes[opened];
		int error;

		lane->run = &run;
		if ((error = nng_ctx_open(&lane->context, socket)) != 0) {
			fprintf(stderr, "cannot open an nng context: %s\n", nng_strerror(error));
			goto fail_open;
		}
		if ((error = nng_aio_alloc(&lane->aio, lane_callback, lane)) != 0) {
			nng_ctx_close(lane->context);
			fprintf(stderr, "cannot allocate an nng aio: %s\n", nng_strerror(error));
			goto fail_open;
		}
		nng_aio_set_timeout(lane->aio, (nng_duration)(options->request_seconds * 1000));
	}

	started = measure_now();
	run.deadline = started + (uint64_t)(options->seconds * 1e9);
	for (unsigned i = 0; i < lane_count; i++)
		lane_start_next(&lanes[i]);

	/* Bounded: every operation started before the deadline ends within
	 * request_seconds per step, so allow the deadline plus a generous margin. */
	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += (time_t)(options->seconds + 10 * options->request_seconds) + 1;
	pthread_mutex_lock(&run.lock);
	while (run.idle < lane_count) {
		if (pthread_cond_timedwait(&run.wake, &run.lock, &limit) != 0 && run.idle < lane_count) {
			fprintf(stderr, "operations did not finish in time\n");
			atomic_store(&run.failed, true);
			break;
		}
	}
	pthread_mutex_unlock(&run.lock);

	*completed = atomic_load(&run.completed);
	*seconds = (double)(run.last_finish > started ? run.last_finish - started : 0) / 1e9;
	rv = atomic_load(&run.failed) ? -1 : 0;
fail_open:
	/* Stopping waits for a running callback; stop all before freeing any, since
	 * a stopped lane's neighbours may still be running. */
	for (unsigned i = 0; i < opened; i++)
		nng_aio_stop(lanes[i].aio);
	for (unsigned i = 0; i < opened; i++) {
		nng_aio_free(lanes[i].aio);
		nng_ctx_close(lanes[i].context);
	}
	free(lanes);
fail_lanes:
	pthread_cond_destroy(&run.wake);
	pthread_mutex_destroy(&run.lock);
	return rv;
}

/* Shared by the threads of driver_run_threads; the counters are atomics, the
 * rest is read-only while the threads run. */
struct driver_threads {
	const struct driver_calls *calls;
	void *context;
	struct measure *measure;
	uint64_t count;
	uint64_t deadline;
	atomic_uint_fast64_t next_index;
	atomic_uint_fast64_t completed;
	atomic_uint_fast64_t last_finish;
	atomic_bool failed;
};

static void *driver_thread_main(void *argument)
{
	struct driver_threads *run = argument;
	void *state = NULL;

	while (!atomic_load(&run->failed) && measure_now() < run->deadline) {
		uint64_t index = atomic_fetch_add(&run->next_index, 1);
		uint64_t started;
		uint64_t finished;

		if (index >= run->count)
			break;
		started = measure_now();
		if (run->calls->call(run->context, &state, index) != 0) {
			atomic_store(&run->failed, true);
			break;
		}
		finished = measure_now();
		if (run->measure != NULL)
			measure_add(run->measure, finished - started);
		atomic_fetch_add(&run->completed, 1);
		/* The latest finish time of all threads; a lost race only loses to a later time. */
		uint64_t seen = atomic_load(&run->last_finish);

		while (seen < finished && !atomic_compare_exchange_weak(&run->last_finish, &seen, finished))
			;
	}
	if (run->calls->thread_done != NULL)
		run->calls->thread_done(run->context, state);
	return NULL;
}

int driver_run_threads(const struct driver_calls *calls, void *context,
		       const struct driver_options *options, struct measure *measure,
		       uint64_t *completed, double *seconds)
{
	struct driver_threads run = {.calls = calls, .context = context, .measure = measure};
	unsigned thread_count = options->inflight ? options->inflight : 1;
	pthread_t *threads = calloc(thread_count, sizeof(*threads));
	unsigned started_threads = 0;
	uint64_t started;

	if (threads == NULL) {
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	run.count = options->count;
	atomic_init(&run.next_index, 0);
	atomic_init(&run.completed, 0);
	atomic_init(&run.failed, false);
	started = measure_now();
	atomic_init(&run.last_finish, started);
	run.deadline = started + (uint64_t)(options->seconds * 1e9);
	for (; started_threads < thread_count; started_threads++) {
		if (pthread_create(&threads[started_threads], NULL, driver_thread_main, &run) != 0) {
			fprintf(stderr, "cannot start thread %u\n", started_threads);
			atomic_store(&run.failed, true);
			break;
		}
	}
	/* Each call is bounded by the callee's own request timeout. */
	for (unsigned i = 0; i < started_threads; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	*completed = atomic_load(&run.completed);
	*seconds = (double)(atomic_load(&run.last_finish) - started) / 1e9;
	return atomic_load(&run.failed) ? -1 : 0;
}
