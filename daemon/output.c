/*
 * The `output` op; see output.h.
 *
 * A reader is answered exactly once, by whoever moves its state from ARMED to
 * CLAIMED (as in waiters.c): bytes arriving (the outlog watch's notify, on
 * the worker that read them), the timer (nng's thread), the client's pipe
 * closing, or shutdown. During setup the state is SETUP; setup arms it and
 * then looks again, so an event during setup is not lost.
 *
 * A job that has not started yet has no log (only a running exec attempt
 * makes one, so a reader can never make memory that nobody frees): its
 * reader polls for the log on its timer every POLL_MS until it appears, the
 * job ends, or the wait runs out.
 *
 * References on a reader: setup's, the timer's (while a sleep is pending),
 * the watch's (while registered), and a claimer's from the open list.
 */
#include "daemon/output.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/base/problem.h"
#include "daemon/base/writer.h"
#include "daemon/core/jobs.h"
#include "daemon/core/principal.h"
#include "daemon/core/quota.h"
#include "daemon/executors/process/inbuf.h"
#include "daemon/executors/process/outlog.h"
#include "daemon/server/request.h"
#include "daemon/server/server.h"
#include "proto/base64.h"

#define POLL_MS 100

enum reader_state { STATE_SETUP, STATE_ARMED, STATE_CLAIMED };
enum reader_reason { REASON_DATA, REASON_TIMEOUT, REASON_ABANDONED, REASON_SHUTDOWN };

/* Fields from request to deadline are set before the reader is published and
 * never change; `log` and the watch's registration are guarded by `lock`. */
struct reader {
	struct outlog_watch watch; /* first: notify gets it back as the reader */
	struct server_request *request;
	uint32_t pipe;
	uid_t uid;
	struct job *job;           /* a reference */
	enum outlog_stream stream;
	uint64_t offset;
	size_t max;
	bool binary;
	double deadline;           /* monotonic */
	nng_aio *timer;
	pthread_mutex_t lock;
	struct outlog *log;        /* a reference once found; NULL before */
	atomic_int state;
	atomic_bool expired;
	enum reader_reason reason; /* written and read by the claimer alone */
	atomic_int references;
	LIST_ENTRY(reader) open;   /* guarded by open_lock */
	bool listed;               /* in open_readers; guarded by open_lock */
};

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(, reader) open_readers = LIST_HEAD_INITIALIZER(open_readers);
static atomic_size_t waiting;
static size_t max_waiting = 100000;
static struct jobs *the_jobs;

void output_init(struct jobs *jobs, size_t max)
{
	the_jobs = jobs;
	max_waiting = max;
}

size_t output_waiting(void)
{
	return atomic_load(&waiting);
}

static void reader_ref(struct reader *reader)
{
	atomic_fetch_add_explicit(&reader->references, 1, memory_order_relaxed);
}

static void reader_unref(struct reader *reader)
{
	/* acq_rel: the last dropper sees the others' writes before freeing. */
	if (atomic_fetch_sub_explicit(&reader->references, 1, memory_order_acq_rel) != 1)
		return;
	if (reader->timer != NULL)
		nng_aio_reap(reader->timer);
	outlog_unref(reader->log);
	job_unref(reader->job);
	pthread_mutex_destroy(&reader->lock);
	quota_give(QUOTA_WAITERS, reader->uid, 1);
	atomic_fetch_sub(&waiting, 1);
	free(reader);
}

static const char *const stream_names[] = {"stdout", "stderr", "both"};

/* Room kept before the bytes of a binary reply for its JSON, which is
 * written there once the read says what it is; more (many runs) moves the
 * bytes once. */
#define BINARY_HEADER_ROOM 512

/* A binary reply's message, made by outlog_read_into under the log's lock
 * with room for the JSON before the bytes. */
struct placement {
	nng_msg *message; /* owned until the reply is sent */
};

static void *place_in_message(void *arg, size_t length)
{
	struct placement *placement = arg;
	if (nng_msg_alloc(&placement->message, BINARY_HEADER_ROOM + length) != 0)
		return NULL;
	return (char *)nng_msg_body(placement->message) + BINARY_HEADER_ROOM;
}

/* The JSON of a reply, without the bytes when binary (then "bytes" counts them). */
static void write_header(struct writer *writer, const struct job *job, bool started,
                         enum outlog_stream stream, const struct outlog_slice *slice, bool binary)
{
	writer_text(writer, "{\"ok\":true,\"id\":");
	writer_unsigned(writer, job->id);
	writer_text(writer, ",\"stream\":\"");
	writer_text(writer, stream_names[stream]);
	if (binary) {
		writer_text(writer, "\",\"bytes\":");
		writer_unsigned(writer, slice->length);
	} else {
		size_t encoded = base64_encoded_size(slice->length);
		writer_text(writer, "\",\"data\":\"");
		if (slice->length > 0 && !writer->failed) {
			/* Encoded in place: the message was reserved for it. */
			size_t at = nng_msg_len(writer->message);
			if (nng_msg_realloc(writer->message, at + encoded) == 0)
				base64_encode(slice->data, slice->length,
				              (char *)nng_msg_body(writer->message) + at);
			else
				writer->failed = true;
		}
		writer_text(writer, "\"");
	}
	writer_text(writer, ",\"offset\":");
	writer_unsigned(writer, slice->offset);
	writer_text(writer, ",\"next\":");
	writer_unsigned(writer, slice->next);
	writer_text(writer, ",\"lost\":");
	writer_unsigned(writer, slice->lost);
	writer_text(writer, slice->eof ? ",\"eof\":true" : ",\"eof\":false");
	writer_text(writer, started ? ",\"started\":true" : ",\"started\":false");
	if (stream == OUTLOG_BOTH) {
		writer_text(writer, ",\"runs\":[");
		for (size_t i = 0; i < slice->run_count; i++) {
			writer_text(writer, i > 0 ? ",[" : "[");
			writer_unsigned(writer, (uint64_t)slice->runs[i].stream);
			writer_text(writer, ",");
			writer_unsigned(writer, slice->runs[i].length);
			writer_text(writer, "]");
		}
		writer_text(writer, "]");
	}
	writer_text(writer, "}");
}

/* Puts header (a message of JSON, taken) and a NUL before the bytes in
 * placement's message (NULL when there are none). A new message, or NULL. */
static nng_msg *binary_message(nng_msg *header, struct placement *placement)
{
	if (header == NULL) {
		nng_msg_free(placement->message);
		return NULL;
	}
	size_t length = nng_msg_len(header);
	nng_msg *message = placement->message;
	int rv = 0;
	if (message == NULL) {
		rv = nng_msg_append(header, "", 1);
		message = header;
		header = NULL;
	} else if (length + 1 <= BINARY_HEADER_ROOM) {
		/* Trimming the front of an nng message moves no bytes. */
		char *body = nng_msg_body(message);
		memcpy(body + BINARY_HEADER_ROOM - length - 1, nng_msg_body(header), length);
		body[BINARY_HEADER_ROOM - 1] = '\0';
		rv = nng_msg_trim(message, BINARY_HEADER_ROOM - length - 1);
	} else {
		/* A long header (many runs): the bytes move once more, behind it.
		 * (nng 1.5.2's nng_msg_insert, growing a trimmed message, wrote past its
		 * buffer here under ASan.) */
		size_t bytes = nng_msg_len(message) - BINARY_HEADER_ROOM;
		if ((rv = nng_msg_append(header, "", 1)) == 0)
			rv = nng_msg_append(header, (char *)nng_msg_body(message) + BINARY_HEADER_ROOM,
			                    bytes);
		nng_msg_free(message);
		message = header;
		header = NULL;
	}
	nng_msg_free(header);
	if (rv != 0) {
		nng_msg_free(message);
		return NULL;
	}
	return message;
}

/* The reply for a read of `log` (borrowed, may be NULL: not started) at
 * offset. A new message, or NULL when memory ran out. Binary: the bytes
 * follow the JSON and one NUL byte as they are, and "bytes" says how many; a
 * reader that streams a fast command then spends nothing on base64 (it was
 * most of `weft run -- cat`'s time), and the bytes are copied once, from the
 * log into the message. JSON text never holds a raw NUL, so the first one
 * ends it. */
static nng_msg *reply_message(struct outlog *log, const struct job *job, bool finished,
                              enum outlog_stream stream, uint64_t offset, size_t max,
                              bool binary, int *error)
{
	struct outlog_slice slice;
	struct placement placement = {.message = NULL};
	*error = WEFT_ENOMEM;
	if (log == NULL) {
		slice = (struct outlog_slice){.offset = offset, .next = offset, .eof = finished};
	} else if ((*error = binary ? outlog_read_into(log, stream, offset, max, place_in_message,
	                                               &placement, &slice)
	                            : outlog_read(log, stream, offset, max, &slice)) != WEFT_OK) {
		nng_msg_free(placement.message);
		return NULL;
	}
	*error = WEFT_ENOMEM;
	struct writer writer;
	writer_init(&writer, (binary ? 0 : base64_encoded_size(slice.length)) + 256 +
	                             slice.run_count * 24);
	write_header(&writer, job, log != NULL, stream, &slice, binary);
	outlog_slice_clear(&slice);
	nng_msg *header = writer_finish(&writer);
	return binary ? binary_message(header, &placement) : header;
}

/* Answers slot with a read of log, or with what stopped it. */
static void reply(struct server_request *slot, struct outlog *log, const struct job *job,
                  bool finished, enum outlog_stream stream, uint64_t offset, size_t max,
                  bool binary)
{
	int error;
	nng_msg *message = reply_message(log, job, finished, stream, offset, max, binary, &error);
	if (message != NULL) {
		server_reply_message(slot, message);
		return;
	}
	struct problem problem;
	problem_init(&problem);
	if (error == WEFT_ENOMEM)
		problem_set(&problem, WEFT_ENOMEM, NULL, "weftd ran out of memory reading the output");
	else
		problem_set(&problem, error, NULL,
		            "weftd could not read job %llu's spooled output back (see its log)",
		            (unsigned long long)job->id);
	server_reply(slot, problem_to_reply(&problem));
}

static bool claim(struct reader *reader, enum reader_reason reason)
{
	int armed = STATE_ARMED;
	if (!atomic_compare_exchange_strong(&reader->state, &armed, STATE_CLAIMED))
		return false;
	reader->reason = reason;
	return true;
}

/* The claimer's work. The caller holds a reference. */
static void complete(struct reader *reader, bool from_timer)
{
	pthread_mutex_lock(&reader->lock);
	bool unwatched = reader->log != NULL && outlog_unwatch(reader->log, &reader->watch);
	struct outlog *log = reader->log != NULL ? outlog_ref(reader->log) : NULL;
	pthread_mutex_unlock(&reader->lock);
	if (unwatched)
		reader_unref(reader); /* the watch's; the caller's keeps it alive */
	if (reader->timer != NULL && !from_timer)
		nng_aio_cancel(reader->timer);
	pthread_mutex_lock(&open_lock);
	if (reader->listed)
		LIST_REMOVE(reader, open);
	reader->listed = false;
	pthread_mutex_unlock(&open_lock);
	if (reader->reason == REASON_ABANDONED) {
		server_drop(reader->request);
	} else {
		if (log == NULL)
			log = outlog_find(reader->job->id);
		bool finished = job_state_finished(jobs_state(the_jobs, reader->job));
		reply(reader->request, log, reader->job, finished, reader->stream, reader->offset,
		      reader->max, reader->binary);
	}
	outlog_unref(log);
}

static void on_notify(struct outlog_watch *watch)
{
	struct reader *reader = (struct reader *)watch;
	if (claim(reader, REASON_DATA))
		complete(reader, false);
	reader_unref(reader); /* the watch's */
}

/* Looks for the job's log and watches it. Returns true when the reader can
 * be answered now: bytes or the end are there, or the job ended without one. */
static bool attach(struct reader *reader)
{
	pthread_mutex_lock(&reader->lock);
	if (reader->log == NULL) {
		reader->log = outlog_find(reader->job->id);
		if (reader->log == NULL) {
			pthread_mutex_unlock(&reader->lock);
			return job_state_finished(jobs_state(the_jobs, reader->job));
		}
		reader_ref(reader); /* the watch's */
		if (!outlog_watch(reader->log, &reader->watch)) {
			pthread_mutex_unlock(&reader->lock);
			reader_unref(reader);
			return true;
		}
	}
	pthread_mutex_unlock(&reader->lock);
	return false;
}

static int sleep_ms(const struct reader *reader, double left)
{
	double ms = left * 1000.0;
	bool polling;
	struct reader *mutable = (struct reader *)reader;
	pthread_mutex_lock(&mutable->lock);
	polling = reader->log == NULL;
	pthread_mutex_unlock(&mutable->lock);
	if (polling && ms > POLL_MS)
		ms = POLL_MS;
	return ms <= 0 ? 0 : (int)(ms + 0.999);
}

static void on_timer(void *argument)
{
	struct reader *reader = argument;
	if (nng_aio_result(reader->timer) == 0) {
		double left = reader->deadline - now_monotonic();
		if (left > 0 && atomic_load(&reader->state) != STATE_CLAIMED) {
			if (attach(reader)) {
				if (claim(reader, REASON_DATA))
					complete(reader, true);
				reader_unref(reader); /* the timer's */
				return;
			}
			nng_sleep_aio(sleep_ms(reader, left), reader->timer);
			if (atomic_load(&reader->state) == STATE_CLAIMED)
				nng_aio_cancel(reader->timer);
			return; /* the timer keeps its reference */
		}
		atomic_store(&reader->expired, true);
		if (claim(reader, REASON_TIMEOUT))
			complete(reader, true);
	}
	reader_unref(reader); /* the timer's */
}


void output_read(struct server_request *slot, const struct principal *caller, struct job *job,
                 bool exec_job, const struct request *request)
{
	struct problem problem;
	problem_init(&problem);
	if (!exec_job) {
		problem_set(&problem, WEFT_EBADFIELD, "id",
		            "job %llu does not run 'exec'; only exec jobs have output (read other "
		            "jobs' results with 'result')",
		            (unsigned long long)job->id);
		problem.id = job->id;
		server_reply(slot, problem_to_reply(&problem));
		job_unref(job);
		return;
	}
	enum outlog_stream stream = (enum outlog_stream)request->output_stream;
	struct outlog *log = outlog_find(job->id);
	uint64_t offset = 0;
	if (request->output_offset >= 0) {
		offset = (uint64_t)request->output_offset;
	} else if (log != NULL) {
		uint64_t total = outlog_total(log, stream);
		uint64_t back = (uint64_t)(-(request->output_offset + 1)) + 1;
		offset = back < total ? total - back : 0;
	}
	double wait = request->has_wait ? request->wait : 0;
	bool finished = job_state_finished(jobs_state(the_jobs, job));
	bool ready = log == NULL ? finished : outlog_ended(log) || outlog_total(log, stream) != offset;
	if (ready || wait <= 0) {
		reply(slot, log, job, finished, stream, offset, request->output_max,
		      request->output_binary);
		outlog_unref(log);
		job_unref(job);
		return;
	}
	if (atomic_fetch_add(&waiting, 1) >= max_waiting) {
		atomic_fetch_sub(&waiting, 1);
		problem_set(&problem, WEFT_EBUSY, NULL,
		            "too many requests are waiting (%zu, --max-waiters); try again later",
		            max_waiting);
		goto refuse;
	}
	if (quota_take(QUOTA_WAITERS, caller->uid, 1, &problem) != WEFT_OK) {
		atomic_fetch_sub(&waiting, 1);
		goto refuse;
	}
	struct reader *reader = memory_zalloc(sizeof(*reader));
	if (nng_aio_alloc(&reader->timer, on_timer, reader) != 0) {
		free(reader);
		atomic_fetch_sub(&waiting, 1);
		quota_give(QUOTA_WAITERS, caller->uid, 1);
		problem_set(&problem, WEFT_ENOMEM, NULL, "cannot make a timer");
		goto refuse;
	}
	reader->watch.stream = stream;
	reader->watch.offset = offset;
	reader->watch.notify = on_notify;
	reader->request = slot;
	reader->pipe = server_request_pipe(slot);
	reader->uid = caller->uid;
	reader->job = job;
	reader->stream = stream;
	reader->offset = offset;
	reader->max = request->output_max;
	reader->binary = request->output_binary;
	reader->deadline = now_monotonic() + wait;
	pthread_mutex_init(&reader->lock, NULL);
	atomic_init(&reader->state, STATE_SETUP);
	atomic_init(&reader->references, 2); /* setup's and the timer's */
	outlog_unref(log); /* attach finds it again, under the reader's lock */

	pthread_mutex_lock(&open_lock);
	LIST_INSERT_HEAD(&open_readers, reader, open);
	reader->listed = true;
	pthread_mutex_unlock(&open_lock);

	bool now = attach(reader);
	nng_sleep_aio(sleep_ms(reader, wait), reader->timer);
	atomic_store(&reader->state, STATE_ARMED);
	if (now || atomic_load(&reader->expired)) {
		if (claim(reader, now ? REASON_DATA : REASON_TIMEOUT))
			complete(reader, false);
	} else {
		/* The client may have gone while this was set up (see waiters.c). */
		struct principal *still = server_request_principal(slot);
		if (still == NULL && claim(reader, REASON_ABANDONED))
			complete(reader, false);
		principal_unref(still);
	}
	reader_unref(reader); /* setup's */
	return;

refuse:
	outlog_unref(log);
	job_unref(job);
	server_reply(slot, problem_to_reply(&problem));
}

/* Claims every open reader on `pipe` (all when all), for the reason. */
static void claim_matching(bool all, uint32_t pipe, enum reader_reason reason)
{
	size_t used = 0, capacity = 16;
	struct reader **found = memory_alloc(capacity * sizeof(*found));
	pthread_mutex_lock(&open_lock);
	struct reader *reader;
	LIST_FOREACH(reader, &open_readers, open) {
		if (!all && reader->pipe != pipe)
			continue;
		if (used == capacity) {
			capacity *= 2;
			found = memory_realloc(found, capacity * sizeof(*found));
		}
		reader_ref(reader);
		found[used++] = reader;
	}
	pthread_mutex_unlock(&open_lock);
	for (size_t i = 0; i < used; i++) {
		if (claim(found[i], reason))
			complete(found[i], false);
		reader_unref(found[i]);
	}
	free(found);
}

void output_pipe_closed(uint32_t pipe)
{
	claim_matching(false, pipe, REASON_ABANDONED);
}

void output_shutdown(void)
{
	claim_matching(true, 0, REASON_SHUTDOWN);
}

void output_input(struct server_request *slot, struct job *job, bool exec_job,
                  const struct request *request)
{
	struct problem problem;
	problem_init(&problem);
	if (!exec_job) {
		problem_set(&problem, WEFT_EBADFIELD, "id",
		            "job %llu does not run 'exec'; only exec jobs with stdin_stream take input",
		            (unsigned long long)job->id);
		problem.id = job->id;
		server_reply(slot, problem_to_reply(&problem));
		job_unref(job);
		return;
	}
	struct inbuf *buffer = inbuf_find(job->id);
	bool finished = job_state_finished(jobs_state(the_jobs, job));
	size_t accepted = 0, pending = 0;
	bool open = false;
	if (buffer != NULL) {
		open = inbuf_append(buffer, request->input_data, request->input_length,
		                    request->input_eof, &accepted);
		pending = inbuf_pending(buffer);
	}
	/* Not started yet: nothing taken, "started": false, send again later.
	 * Ended, or its stdin closed (or a job without stdin_stream): "closed". */
	json_t *reply = json_pack("{s:b, s:I, s:I, s:I, s:b, s:b}", "ok", 1, "id",
	                          (json_int_t)job->id, "accepted", (json_int_t)accepted, "pending",
	                          (json_int_t)pending, "started", buffer != NULL || finished,
	                          "closed", buffer != NULL ? !open : finished);
	inbuf_unref(buffer);
	job_unref(job);
	server_reply(slot, reply);
}
