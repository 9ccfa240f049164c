/*
 * The nng side of weftd; see server.h.
 *
 * Request slots: each slot owns one REP context and one aio, and cycles
 *   receiving → handling → sending → receiving (or idle).
 * A slot that is handling may stay there for a long time (a long poll held by
 * a waiter); to keep accepting, the receive callback tops up the number of
 * receiving slots to `target` from the idle list or by opening a new context.
 * A slot that finishes sending goes back to receiving when fewer than target
 * are, and to the idle list otherwise, so the pool grows to the peak of
 * concurrent long polls and no further. Slots are freed only at stop.
 *
 * Request threads: a received request is not handled on nng's callback
 * thread. nng 1.5.2 runs every completion of the socket (each step of every
 * pipe's reads and writes) on one small FIFO task queue (2 threads per core);
 * a handler that takes milliseconds there (an event read of 10,000 entries,
 * a 256 KiB argument) holds up every other client's I/O behind it, even
 * its connection handshakes: under `make soak` the event reads of the flood
 * took 70% of weftd's CPU on those threads, a well-behaved client's p99 was
 * 50-350 ms against 0.3 ms idle (5-11 ms with the event reads left out), and
 * requests held in a handler on purpose stopped new connections. So the receive callback only queues the
 * request, by the user it came from, and weftd's own request threads
 * ("weft-request") take them round-robin between users, FIFO within one
 * user: a user's flood never sits in front of another user's request, and
 * one user runs on at most all but one of the threads at a time, so a single
 * flooding user leaves a thread free for the others. A user may have REQUEST_QUEUE_COUNT
 * requests (and REQUEST_QUEUE_BYTES_FACTOR x the transport's limit of bytes)
 * queued; past that a request is answered `busy` at once, so a client that
 * pipelines requests faster than they are handled cannot grow the queue.
 *
 * Listener guard: nng 1.5.2 stops accepting on a listener when a peer hangs up
 * in the middle of the handshake (#1518): new connections still complete the
 * SP handshake in the transport but are never attached to the socket, so
 * their requests go unanswered. The guard therefore checks each listener end
 * to end every LISTENER_WATCH_MS, with a fresh connection and a ping, and
 * makes a new listener when that goes unanswered twice in a row.
 *
 * Recovery never drops an established connection. Closing an nng listener
 * closes every pipe it accepted (long polls, a `weft run` waiting for its
 * job), so a stuck ipc listener is not closed: every ipc listener listens on
 * a private path beside the public one (weft.sock.N) that is then renamed
 * over the public name, atomically. To recover, the guard makes a new
 * listener on a fresh private path and renames it over the public name: new
 * clients reach the new one at once, while the old listener, no longer
 * reachable by name, keeps serving its pipes. It is retired (closed) only
 * once it has had no pipe for two rounds in a row. (nng unlinks a listener's
 * own path when it closes, which is the private name and long gone, so the
 * public name is never removed by a close.) A tcp or tls listener cannot be
 * swapped that way (a second bind of the port fails): it is still closed and
 * re-created, which resets its clients; say so in the log.
 *
 * Out of file descriptors (EMFILE/ENFILE) is overload, not a broken
 * listener: a probe that cannot get a socket is not counted as a miss, a
 * re-creation that cannot bind keeps the old listener and the public name
 * as they are, and nng keeps accepting as fds come back. New connections are
 * shed meanwhile (the kernel's backlog fills); established ones are served.
 *
 * The guard runs on a thread of its own ("weft-guard"), never on the main
 * loop, and its probe uses no nng socket (probe_request() writes the REQ
 * message by hand over a raw socket, every wait bounded by poll()). Both
 * because of issue 17: once nng 1.5.2's single reaper thread is stuck, every
 * nng_close() blocks forever, and the old probe's nng_close() froze the main
 * loop and with it signals and retention. A raw probe always ends within its
 * timeout, and an unanswered one counts as failed. Re-creating a listener
 * still calls into nng and may block; then only the guard waits (one thread,
 * so at most one probe is ever outstanding), `stats` shows its last round
 * growing old, and server_stop() leaves it behind after a bound.
 */
#include "daemon/server/server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/base/memory.h"
#include "daemon/core/principal.h"
#include "daemon/base/problem.h"
#include "daemon/core/quota.h"
#include "daemon/server/probe.h"
#include "daemon/base/writer.h"
#include "proto/proto.h"
#include "proto/tls.h"
#include "proto/url.h"
#include "weft/error.h"

/* How many contexts wait for requests at once: enough for many clients with
 * requests in flight (a benchmark keeps 64 in flight) without holding threads. */
#define RECEIVING_TARGET 128
/* Request threads: REQUEST_THREADS_PER_CPU per online CPU, within these bounds. */
#define REQUEST_THREADS_PER_CPU 2
#define REQUEST_THREADS_MIN 4
#define REQUEST_THREADS_MAX 32
/* Requests one user may have queued, by count and by bytes (this factor times
 * the transport's limit on one message), before more are refused busy. The
 * count bounds the slots (a context and an aio each, about a kilobyte) one
 * user's pipelining can make; it is well above what one client legitimately
 * keeps in flight (libweft's async tests keep 1,000). */
#define REQUEST_QUEUE_COUNT 4096
#define REQUEST_QUEUE_BYTES_FACTOR 4
/* What the guard sends to check a listener end to end. */
#define GUARD_PING "{\"op\":\"ping\"}"
/* How long claim_ipc_path's probe waits for a handshake. */
#define PROBE_TIMEOUT_MS 1000
/* How often the guard pings each listener. */
#define LISTENER_WATCH_MS 500
/* How long the guard waits for its ping to be answered. */
#define LISTENER_PING_MS 500
/* How long server_stop waits for the guard to finish its round. */
#define GUARD_STOP_MS 2000
/* Unanswered pings in a row before a listener is re-created: one miss can be
 * load, two in a row are the defect. A false alarm costs little: closing a
 * listener keeps the connections it made, and clients redial at once. */
#define LISTENER_FAILURES_TO_RECREATE 2

enum slot_phase { PHASE_RECEIVING, PHASE_HANDLING, PHASE_SENDING, PHASE_IDLE };

/* Owned by the server (freed in server_stop). phase is written by whichever
 * thread moves the slot on; each move happens-after the previous one through
 * nng's aio completion or the idle-list lock. */
struct server_request {
	struct server *server;
	nng_ctx context;
	nng_aio *aio;
	enum slot_phase phase;
	/* Written by on_aio on nng's receive callback before the handler is called;
	 * read by the handler and whoever it hands the request to (a waiter),
	 * which all come after that call. Unchanged until the slot is recycled. */
	uint32_t pipe;
	/* While queued for a request thread (guarded by server->queue.lock):
	 * the request, its user's queue and the next request of that user. */
	nng_msg *message;
	struct user_queue *user;
	struct server_request *next_queued;
	struct server_request *next_idle; /* guarded by server->lock */
	struct server_request *next_all;  /* guarded by server->lock */
};

/* The listener guard's thread and what it reports. */
struct guard {
	pthread_t thread;
	bool started;            /* main thread only */
	pthread_mutex_t lock;    /* guards stop, and is the condition's mutex */
	pthread_cond_t wake;     /* on CLOCK_MONOTONIC; signalled by server_stop */
	bool stop;
	/* Written by the guard thread, read by stats on any thread. Relaxed:
	 * each is a counter or a time read on its own, publishing nothing else. */
	atomic_uint_least64_t rounds;
	atomic_uint_least64_t failed_probes;
	atomic_uint_least64_t recreated;
	atomic_uint_least64_t retired; /* replaced listeners still serving their pipes */
	atomic_uint_least64_t idle_closed; /* pipes closed past --idle-timeout */
	atomic_int_least64_t last_round_us; /* monotonic µs of the last round's end; 0: none yet */
};

/* The URL and the nng listener are written by server_start before the guard
 * starts, then by the guard thread alone (it re-creates listeners);
 * server_stop reads them after joining it. */
struct listener {
	char *url;              /* the public URL */
	nng_listener listener;
	int failures;           /* guard thread only */
	bool renamed;           /* an ipc listener on a private path renamed over the public one */
	char bound[108];        /* when renamed: the private path it was bound to */
};

/* An ipc listener replaced by the guard, kept until its pipes are gone.
 * Guard thread only (server_stop reads them after joining it). */
#define RETIRED_SUSPECTS 64
/* How much of a suspect's unread bytes is compared from round to round: the
 * frame's length (8) and the REQ request id (4), which every new request
 * changes, so that a busy client repeating one request is told apart from a
 * request nobody reads. */
#define SUSPECT_HEAD 12
/* Rounds in a row the very same message must sit unread before its
 * connection is reset: when the peer process has no pipe on the listener,
 * and when it has one (the connection might then be that pipe, stalled). */
#define UNREAD_ROUNDS_NO_PIPE 1
#define UNREAD_ROUNDS_PEER_PIPE 4
struct retired {
	nng_listener listener;
	int idle_rounds; /* rounds in a row it had no pipe; -1: closed, leak to sweep */
	char bound[108]; /* the private path it was bound to (its connections' local name) */
	/* Its connections that had unread bytes last round: inode, count, the
	 * first bytes of what is unread, and for how many rounds in a row all
	 * three stayed the same. */
	struct {
		unsigned long inode;
		int bytes; /* -1: reset already */
		unsigned char head[SUSPECT_HEAD];
		int rounds;
	} suspects[RETIRED_SUSPECTS];
	size_t suspect_count;
	/* Once closed: what still bears its name, by fd and inode, and for how
	 * many rounds in a row that fd has held that very socket. */
	struct {
		int fd;
		unsigned long inode;
		int rounds;
	} leaks[RETIRED_SUSPECTS];
	size_t leak_count;
	int closed_rounds; /* rounds since it was closed */
};

/* Rounds in a row a retired listener must have no pipe before it is closed:
 * a connection in its handshake at the moment of the swap gets time to
 * attach (or to fail) first. */
#define RETIRED_IDLE_ROUNDS 2
/* Rounds in a row a descriptor must keep the closed listener's name, and the
 * same socket, before the guard takes it for leaked and closes it; and how
 * long it looks. nng closes what it still owns within milliseconds of the
 * listener's close (its pipes and negotiations); a descriptor closed by the
 * guard while nng still owned it would be closed a second time by nng, by
 * number, after the number went to a new connection. */
#define LEAKED_ROUNDS 6
#define LEAK_WATCH_ROUNDS 40

/* Who each connection is (rule 1 of principal.h), by pipe id. Filled on
 * NNG_PIPE_EV_ADD_PRE, emptied on NNG_PIPE_EV_REM_POST, read by every request;
 * the lock guards the buckets and is never held across a lookup of the user
 * database (the principal is made before it is taken). */
#define PIPE_BUCKETS 1024
struct pipe_entry {
	struct pipe_entry *next;
	uint32_t pipe;
	uint32_t listener; /* id of the listener that accepted it (0: a dialer) */
	uint64_t peer_pid; /* the peer's pid for an ipc pipe (SO_PEERCRED), else 0 */
	struct principal *principal; /* a reference */
	/* For the idle deadline (--idle-timeout), under pipes_lock: requests
	 * received and not answered yet, and when a whole request last arrived
	 * or a reply left (monotonic seconds). */
	unsigned in_flight;
	double last_active;
};

/* One user's received requests, waiting for a request thread. Made on the
 * user's first request, kept until server_stop (one per uid that ever sent
 * a request: bounded by the local users). Guarded by queue.lock. */
#define USER_BUCKETS 256
struct user_queue {
	uid_t uid;
	struct server_request *head, *tail;
	size_t count, bytes;
	unsigned running;             /* its requests being handled now */
	bool ready;                   /* on the ready ring */
	struct user_queue *next_ready; /* the ready ring's order */
	struct user_queue *next_user;  /* its hash bucket */
};

struct request_queue {
	pthread_mutex_t lock;  /* guards everything here and every user_queue */
	pthread_cond_t ready;  /* a request was queued, a user fell below its share, or stop */
	/* Users with a request queued that may run one now, in turn: a thread
	 * takes the first one's oldest request and moves it to the back. */
	struct user_queue *first, *last;
	struct user_queue *users[USER_BUCKETS];
	unsigned share;        /* requests of one user running at once, at most */
	size_t running, queued; /* all users' */
	uint64_t refused;      /* answered busy */
	size_t max_bytes;      /* per user queued */
	bool stop;
	pthread_t *threads;
	size_t thread_count;   /* started */
};

struct server {
	nng_socket socket;
	struct listener *listeners;
	size_t listener_count;
	struct guard guard;
	size_t transport_max;
	double idle_timeout; /* --idle-timeout; set before listening */
	server_handler_fn handler;
	server_pipe_closed_fn pipe_closed;
	void *context;
	uid_t owner; /* a user daemon admits only this uid */
	struct principal *tcp_user; /* a reference, or NULL; set before listening */
	struct principal *tls_user; /* a reference, or NULL; set before listening */
	nng_tls_config *tls;        /* for tls+tcp:// listeners, or NULL; a reference */

	/* Guard thread only (and server_start, before the guard starts). */
	struct retired *retired;
	size_t retired_count;
	unsigned generation;        /* of private ipc paths */
	bool out_of_fds;            /* the last probe could not get a descriptor */

	pthread_mutex_t pipes_lock; /* guards pipes */
	struct pipe_entry *pipes[PIPE_BUCKETS];

	pthread_mutex_t lock; /* guards the two slot lists */
	struct server_request *idle;
	struct server_request *all;

	/* Counters read and written by nng's threads with single RMWs; relaxed is
	 * enough since no other data is published through them. */
	atomic_int receiving;
	atomic_size_t outstanding;
	atomic_bool closing;

	struct request_queue queue;
};

static void on_aio(void *argument);
static int guard_start(struct server *server);
static void queue_request(struct server *server, struct server_request *slot, nng_msg *message);

/* A new slot, not yet receiving. Returns NULL when nng cannot make a context. */
static struct server_request *slot_new(struct server *server)
{
	struct server_request *slot = memory_zalloc(sizeof(*slot));
	slot->server = server;
	if (nng_ctx_open(&slot->context, server->socket) != 0) {
		free(slot);
		return NULL;
	}
	if (nng_aio_alloc(&slot->aio, on_aio, slot) != 0) {
		nng_ctx_close(slot->context);
		free(slot);
		return NULL;
	}
	slot->phase = PHASE_IDLE;
	pthread_mutex_lock(&server->lock);
	slot->next_all = server->all;
	server->all = slot;
	pthread_mutex_unlock(&server->lock);
	return slot;
}

static void slot_receive(struct server_request *slot)
{
	slot->phase = PHASE_RECEIVING;
	atomic_fetch_add_explicit(&slot->server->receiving, 1, memory_order_relaxed);
	nng_ctx_recv(slot->context, slot->aio);
}

/* Keeps RECEIVING_TARGET slots receiving. Any thread. */
static void top_up_receivers(struct server *server)
{
	while (!atomic_load_explicit(&server->closing, memory_order_relaxed) &&
	       atomic_load_explicit(&server->receiving, memory_order_relaxed) < RECEIVING_TARGET) {
		pthread_mutex_lock(&server->lock);
		struct server_request *slot = server->idle;
		if (slot != NULL)
			server->idle = slot->next_idle;
		pthread_mutex_unlock(&server->lock);
		if (slot == NULL && (slot = slot_new(server)) == NULL) {
			log_error("cannot open another nng context; serving with fewer");
			return;
		}
		slot_receive(slot);
	}
}

/* A slot whose request is over: receive again, or rest. */
static void slot_recycle(struct server_request *slot)
{
	struct server *server = slot->server;
	if (!atomic_load_explicit(&server->closing, memory_order_relaxed) &&
	    atomic_load_explicit(&server->receiving, memory_order_relaxed) < RECEIVING_TARGET) {
		slot_receive(slot);
		return;
	}
	slot->phase = PHASE_IDLE;
	pthread_mutex_lock(&server->lock);
	slot->next_idle = server->idle;
	server->idle = slot;
	pthread_mutex_unlock(&server->lock);
}

static double monotonic_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* A request arrived on the pipe (delta 1) or its reply left or was dropped
 * (delta -1): the pipe is active now. Any thread; pipes_lock is a leaf. */
static void pipe_touch(struct server *server, uint32_t pipe, int delta)
{
	if (server->idle_timeout <= 0)
		return;
	double now = monotonic_seconds();
	pthread_mutex_lock(&server->pipes_lock);
	for (struct pipe_entry *entry = server->pipes[pipe % PIPE_BUCKETS]; entry != NULL;
	     entry = entry->next) {
		if (entry->pipe == pipe) {
			if (delta > 0)
				entry->in_flight++;
			else if (entry->in_flight > 0)
				entry->in_flight--;
			entry->last_active = now;
			break;
		}
	}
	pthread_mutex_unlock(&server->pipes_lock);
}

static void on_aio(void *argument)
{
	struct server_request *slot = argument;
	struct server *server = slot->server;
	int rv = nng_aio_result(slot->aio);
	if (slot->phase == PHASE_SENDING) {
		/* A failed send leaves the message with the aio; a sent one is the
		 * socket's. Either way the aio holds none afterwards, which is what
		 * server_stop relies on. */
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(slot->aio));
		nng_aio_set_msg(slot->aio, NULL);
		atomic_fetch_sub_explicit(&server->outstanding, 1, memory_order_relaxed);
		pipe_touch(server, slot->pipe, -1);
		slot_recycle(slot);
		return;
	}
	/* PHASE_RECEIVING */
	atomic_fetch_sub_explicit(&server->receiving, 1, memory_order_relaxed);
	if (rv != 0) {
		if (rv == NNG_ECLOSED || atomic_load_explicit(&server->closing, memory_order_relaxed)) {
			slot->phase = PHASE_IDLE;
			return;
		}
		log_warn("receiving a request failed: %s", nng_strerror(rv));
		slot_recycle(slot);
		return;
	}
	nng_msg *message = nng_aio_get_msg(slot->aio);
	nng_aio_set_msg(slot->aio, NULL);
	slot->pipe = nng_pipe_id(nng_msg_get_pipe(message));
	pipe_touch(server, slot->pipe, 1);
	slot->phase = PHASE_HANDLING;
	atomic_fetch_add_explicit(&server->outstanding, 1, memory_order_relaxed);
	top_up_receivers(server);
	/* The guard's ping (exactly its text) is answered here, at once: it costs
	 * nothing, and it comes as the daemon's own uid, whose requests may be
	 * queued behind a flood of that user's, and the guard would take a late
	 * answer for a stuck listener and replace it. */
	if (nng_msg_len(message) == sizeof(GUARD_PING) - 1 &&
	    memcmp(nng_msg_body(message), GUARD_PING, sizeof(GUARD_PING) - 1) == 0) {
		server->handler(server->context, slot, nng_msg_body(message), nng_msg_len(message));
		nng_msg_free(message);
		return;
	}
	/* To a request thread: see "Request threads" above. */
	queue_request(server, slot, message);
}

/* ---- the request threads ---- */

/* The uid of the user a pipe's requests come from; (uid_t)-1 for a pipe not
 * (or no longer) known, whose requests the handler refuses. Any thread. */
static uid_t uid_of_pipe(struct server *server, uint32_t pipe)
{
	uid_t uid = (uid_t)-1;
	pthread_mutex_lock(&server->pipes_lock);
	for (struct pipe_entry *entry = server->pipes[pipe % PIPE_BUCKETS]; entry != NULL;
	     entry = entry->next) {
		if (entry->pipe == pipe) {
			uid = entry->principal->uid;
			break;
		}
	}
	pthread_mutex_unlock(&server->pipes_lock);
	return uid;
}

/* The user's queue, made when new; NULL when out of memory. queue->lock held. */
static struct user_queue *user_queue_of(struct request_queue *queue, uid_t uid)
{
	struct user_queue **bucket = &queue->users[(size_t)uid % USER_BUCKETS];
	for (struct user_queue *user = *bucket; user != NULL; user = user->next_user)
		if (user->uid == uid)
			return user;
	struct user_queue *user = memory_try_zalloc(sizeof(*user));
	if (user == NULL)
		return NULL;
	user->uid = uid;
	user->next_user = *bucket;
	*bucket = user;
	return user;
}

/* Puts the user at the back of the ready ring when it has a request queued
 * and is below its share of the threads. Whether it did. queue->lock held. */
static bool user_make_ready(struct request_queue *queue, struct user_queue *user)
{
	if (user->ready || user->head == NULL || user->running >= queue->share)
		return false;
	user->ready = true;
	user->next_ready = NULL;
	if (queue->last != NULL)
		queue->last->next_ready = user;
	else
		queue->first = user;
	queue->last = user;
	return true;
}

/* Queues a received request for a request thread, or answers it at once:
 * `busy` past the user's queue bounds, or dropped while the server stops.
 * Takes the message. nng's callback thread. */
static void queue_request(struct server *server, struct server_request *slot, nng_msg *message)
{
	struct request_queue *queue = &server->queue;
	uid_t uid = uid_of_pipe(server, slot->pipe);
	size_t bytes = nng_msg_len(message);
	struct problem problem;
	problem_init(&problem);
	pthread_mutex_lock(&queue->lock);
	if (queue->stop) {
		pthread_mutex_unlock(&queue->lock);
		nng_msg_free(message);
		server_drop(slot);
		return;
	}
	struct user_queue *user = user_queue_of(queue, uid);
	if (user == NULL) {
		pthread_mutex_unlock(&queue->lock);
		nng_msg_free(message);
		problem_set(&problem, WEFT_ENOMEM, NULL,
		            "weftd is out of memory and did nothing of this request; try again later");
		server_reply(slot, problem_to_reply(&problem));
		return;
	}
	/* A user's first queued request is always taken, however large (the
	 * transport bounds it), so that one big request is never refused. */
	if (user->count > 0 &&
	    (user->count >= REQUEST_QUEUE_COUNT || user->bytes + bytes > queue->max_bytes)) {
		size_t count = user->count, held = user->bytes;
		queue->refused++;
		pthread_mutex_unlock(&queue->lock);
		nng_msg_free(message);
		problem_set(&problem, WEFT_EBUSY, NULL,
		            "you have %zu requests (%zu bytes) waiting to be handled, and weftd queues "
		            "at most %d (%zu bytes) of one user's: send fewer at once, or wait for "
		            "the replies",
		            count, held, REQUEST_QUEUE_COUNT, queue->max_bytes);
		server_reply(slot, problem_to_reply(&problem));
		return;
	}
	slot->message = message;
	slot->user = user;
	slot->next_queued = NULL;
	if (user->tail != NULL)
		user->tail->next_queued = slot;
	else
		user->head = slot;
	user->tail = slot;
	user->count++;
	user->bytes += bytes;
	queue->queued++;
	if (user_make_ready(queue, user))
		pthread_cond_signal(&queue->ready);
	pthread_mutex_unlock(&queue->lock);
}

/* A request thread: handles the ready users' requests in turn. */
static void *request_main(void *argument)
{
	struct server *server = argument;
	struct request_queue *queue = &server->queue;
	pthread_mutex_lock(&queue->lock);
	for (;;) {
		while (!queue->stop && queue->first == NULL)
			pthread_cond_wait(&queue->ready, &queue->lock);
		if (queue->stop)
			break;
		struct user_queue *user = queue->first;
		queue->first = user->next_ready;
		if (queue->first == NULL)
			queue->last = NULL;
		user->ready = false;
		struct server_request *slot = user->head;
		user->head = slot->next_queued;
		if (user->head == NULL)
			user->tail = NULL;
		nng_msg *message = slot->message;
		slot->message = NULL;
		slot->user = NULL;
		user->count--;
		user->bytes -= nng_msg_len(message);
		user->running++;
		queue->queued--;
		queue->running++;
		/* Its next request waits for the other ready users' turns. */
		if (user_make_ready(queue, user))
			pthread_cond_signal(&queue->ready);
		pthread_mutex_unlock(&queue->lock);
		/* The handler may answer at once, and the send may complete on
		 * another thread before it returns: the slot is not touched after
		 * this call (the user's queue lives until server_stop). */
		server->handler(server->context, slot, nng_msg_body(message), nng_msg_len(message));
		nng_msg_free(message);
		pthread_mutex_lock(&queue->lock);
		user->running--;
		queue->running--;
		if (user_make_ready(queue, user))
			pthread_cond_signal(&queue->ready);
	}
	pthread_mutex_unlock(&queue->lock);
	return NULL;
}

void server_request_stats(struct server *server, struct server_request_stats *stats)
{
	struct request_queue *queue = &server->queue;
	pthread_mutex_lock(&queue->lock);
	stats->threads = queue->thread_count;
	stats->share = queue->share;
	stats->running = queue->running;
	stats->queued = queue->queued;
	stats->refused = queue->refused;
	stats->queued_users = 0;
	for (size_t i = 0; i < USER_BUCKETS; i++)
		for (const struct user_queue *user = queue->users[i]; user != NULL;
		     user = user->next_user)
			stats->queued_users += user->count > 0;
	pthread_mutex_unlock(&queue->lock);
}

/* Starts the request threads. Main thread, before any listener. */
static int requests_start(struct server *server)
{
	struct request_queue *queue = &server->queue;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t count = (size_t)(cpus > 0 ? cpus : 1) * REQUEST_THREADS_PER_CPU;
	if (count < REQUEST_THREADS_MIN)
		count = REQUEST_THREADS_MIN;
	if (count > REQUEST_THREADS_MAX)
		count = REQUEST_THREADS_MAX;
	queue->share = (unsigned)count - 1;
	queue->max_bytes = REQUEST_QUEUE_BYTES_FACTOR * server->transport_max;
	queue->threads = memory_zalloc(count * sizeof(*queue->threads));
	for (size_t i = 0; i < count; i++) {
		if (pthread_create(&queue->threads[i], NULL, request_main, server) != 0)
			return WEFT_EINTERNAL;
		pthread_setname_np(queue->threads[i], "weft-request");
		queue->thread_count = i + 1;
	}
	return WEFT_OK;
}

/* Stops the request threads once their requests' handlers return; what is
 * still queued is freed with the slots. Main thread. */
static void requests_stop(struct server *server)
{
	struct request_queue *queue = &server->queue;
	pthread_mutex_lock(&queue->lock);
	queue->stop = true;
	pthread_cond_broadcast(&queue->ready);
	pthread_mutex_unlock(&queue->lock);
	for (size_t i = 0; i < queue->thread_count; i++)
		pthread_join(queue->threads[i], NULL);
	queue->thread_count = 0;
}

/* Frees the user queues; every request thread has stopped and every slot's
 * message is freed. Main thread. */
static void requests_free(struct server *server)
{
	struct request_queue *queue = &server->queue;
	for (size_t i = 0; i < USER_BUCKETS; i++) {
		while (queue->users[i] != NULL) {
			struct user_queue *user = queue->users[i];
			queue->users[i] = user->next_user;
			free(user);
		}
	}
	free(queue->threads);
	queue->threads = NULL;
	pthread_cond_destroy(&queue->ready);
	pthread_mutex_destroy(&queue->lock);
}

void server_reply_message(struct server_request *slot, nng_msg *message)
{
	if (message == NULL) {
		log_error("cannot encode a reply; dropping the request");
		server_drop(slot);
		return;
	}
	slot->phase = PHASE_SENDING;
	nng_aio_set_msg(slot->aio, message);
	nng_ctx_send(slot->context, slot->aio);
}

void server_reply(struct server_request *slot, json_t *reply)
{
	struct writer writer;
	writer_init(&writer, 256);
	writer_json(&writer, reply);
	json_decref(reply);
	server_reply_message(slot, writer_finish(&writer));
}

void server_drop(struct server_request *slot)
{
	atomic_fetch_sub_explicit(&slot->server->outstanding, 1, memory_order_relaxed);
	pipe_touch(slot->server, slot->pipe, -1);
	/* A REP context that receives again discards the request it held. */
	slot_recycle(slot);
}

struct server *server_request_server(const struct server_request *slot)
{
	return slot->server;
}

uint32_t server_request_pipe(const struct server_request *slot)
{
	return slot->pipe;
}

struct principal *server_request_principal(const struct server_request *slot)
{
	struct server *server = slot->server;
	struct principal *principal = NULL;
	pthread_mutex_lock(&server->pipes_lock);
	for (struct pipe_entry *entry = server->pipes[slot->pipe % PIPE_BUCKETS]; entry != NULL;
	     entry = entry->next) {
		if (entry->pipe == slot->pipe) {
			principal = principal_ref(entry->principal);
			break;
		}
	}
	pthread_mutex_unlock(&server->pipes_lock);
	return principal;
}

static void pipe_remember(struct server *server, uint32_t pipe, uint32_t listener,
                          uint64_t peer_pid, struct principal *principal)
{
	struct pipe_entry *entry = memory_alloc(sizeof(*entry));
	entry->pipe = pipe;
	entry->listener = listener;
	entry->peer_pid = peer_pid;
	entry->principal = principal;
	entry->in_flight = 0;
	entry->last_active = monotonic_seconds();
	pthread_mutex_lock(&server->pipes_lock);
	entry->next = server->pipes[pipe % PIPE_BUCKETS];
	server->pipes[pipe % PIPE_BUCKETS] = entry;
	pthread_mutex_unlock(&server->pipes_lock);
}

/* Pipes that listener `id` accepted and that are still open. Any thread;
 * O(open pipes), called by the guard only while a retired listener waits. */
static size_t pipes_of_listener(struct server *server, uint32_t id)
{
	size_t count = 0;
	pthread_mutex_lock(&server->pipes_lock);
	for (size_t i = 0; i < PIPE_BUCKETS; i++)
		for (struct pipe_entry *entry = server->pipes[i]; entry != NULL; entry = entry->next)
			count += entry->listener == id;
	pthread_mutex_unlock(&server->pipes_lock);
	return count;
}

/* Whether listener `id` has an open pipe whose peer is process `pid`: a
 * connection of that listener from that process may be one of its pipes.
 * Any thread; O(open pipes), called by the guard for a suspect only. */
static bool listener_has_peer(struct server *server, uint32_t id, uint64_t pid)
{
	bool found = false;
	pthread_mutex_lock(&server->pipes_lock);
	for (size_t i = 0; i < PIPE_BUCKETS && !found; i++)
		for (struct pipe_entry *entry = server->pipes[i]; entry != NULL && !found;
		     entry = entry->next)
			found = entry->listener == id && entry->peer_pid == pid;
	pthread_mutex_unlock(&server->pipes_lock);
	return found;
}

static void pipe_forget(struct server *server, uint32_t pipe)
{
	struct pipe_entry *found = NULL;
	pthread_mutex_lock(&server->pipes_lock);
	for (struct pipe_entry **link = &server->pipes[pipe % PIPE_BUCKETS]; *link != NULL;
	     link = &(*link)->next) {
		if ((*link)->pipe == pipe) {
			found = *link;
			*link = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&server->pipes_lock);
	if (found != NULL) {
		/* A remembered pipe holds one of its user's connections. */
		quota_give(QUOTA_CONNECTIONS, found->principal->uid, 1);
		principal_unref(found->principal);
		free(found);
	}
}

/* The principal of a new connection, by its transport (rule 1 of
 * principal.h), or NULL to refuse it. nng's thread; may block on the user
 * database, with no lock held. */
static struct principal *principal_of_pipe(struct server *server, nng_pipe pipe)
{
	uint64_t uid, gid, pid;
	/* The transport is told by the pipe itself (no listener table, which the
	 * guard thread may be changing): only ipc pipes have peer credentials,
	 * only tls pipes say whether the peer's certificate was verified. */
	bool verified;
	if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_UID, &uid) != 0) {
		struct principal *mapped = server->tcp_user;
		if (nng_pipe_get_bool(pipe, NNG_OPT_TLS_VERIFIED, &verified) == 0)
			mapped = verified ? server->tls_user : NULL;
		if (mapped == NULL)
			log_warn("refused a connection that carries no credentials");
		return principal_ref(mapped);
	}
	if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_GID, &gid) != 0) {
		log_warn("refused a connection that carries no credentials");
		return NULL;
	}
	/* A user's daemon runs that user's jobs: nobody else may use it. */
	if (server->owner != 0 && uid != server->owner) {
		log_warn("refused a connection from uid %llu: this daemon serves uid %u only",
		         (unsigned long long)uid, (unsigned)server->owner);
		return NULL;
	}
	if (nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_PID, &pid) != 0)
		pid = 0;
	return principal_for_peer((uid_t)uid, (gid_t)gid, (pid_t)pid);
}

size_t server_outstanding(struct server *server)
{
	return atomic_load_explicit(&server->outstanding, memory_order_relaxed);
}

static void on_pipe_event(nng_pipe pipe, nng_pipe_ev event, void *argument)
{
	struct server *server = argument;
	if (event == NNG_PIPE_EV_ADD_PRE) {
		struct principal *principal = principal_of_pipe(server, pipe);
		if (principal == NULL) {
			nng_pipe_close(pipe);
			return;
		}
		/* One user cannot take every connection (--max-connections-per-user).
		 * A connection cannot be answered before it is added, so the refusal
		 * is the close, and the log says why. */
		struct problem problem;
		problem_init(&problem);
		if (quota_take(QUOTA_CONNECTIONS, principal->uid, 1, &problem) != WEFT_OK) {
			log_warn("refused a connection: %s", problem.message);
			principal_unref(principal);
			nng_pipe_close(pipe);
			return;
		}
		uint64_t peer_pid = 0;
		nng_pipe_get_uint64(pipe, NNG_OPT_IPC_PEER_PID, &peer_pid);
		pipe_remember(server, (uint32_t)nng_pipe_id(pipe),
		              (uint32_t)nng_listener_id(nng_pipe_listener(pipe)), peer_pid, principal);
		return;
	}
	if (event != NNG_PIPE_EV_REM_POST)
		return;
	pipe_forget(server, (uint32_t)nng_pipe_id(pipe));
	if (server->pipe_closed != NULL)
		server->pipe_closed(server->context, nng_pipe_id(pipe));
}

/* mkdir -p for the socket's directory; the last level gets `mode`. */
static int make_directory(const char *socket_path, mode_t mode, char *message, size_t size)
{
	char path[4096];
	if (snprintf(path, sizeof(path), "%s", socket_path) >= (int)sizeof(path))
		goto too_long;
	char *slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return WEFT_OK;
	*slash = '\0';
	for (char *cursor = path + 1; *cursor != '\0'; cursor++) {
		if (*cursor != '/')
			continue;
		*cursor = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			goto fail;
		*cursor = '/';
	}
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		goto fail;
	return WEFT_OK;
fail:
	snprintf(message, size, "cannot make the socket directory '%s': %s", path, strerror(errno));
	return WEFT_EINVAL;
too_long:
	snprintf(message, size, "socket path too long: %s", socket_path);
	return WEFT_EINVAL;
}

/* The TLS configuration every tls+tcp:// listener shares, made for the first. */
static int tls_setup(struct server *server, const struct server_config *config, const char *url,
                     char *message, size_t size)
{
	if (server->tls != NULL)
		return WEFT_OK;
	if (config->tls_user == NULL || config->tls_cert == NULL || config->tls_key == NULL ||
	    config->tls_ca == NULL) {
		snprintf(message, size,
		         "%s needs --tls-cert FILE, --tls-key FILE, --tls-ca FILE (the CA that signs "
		         "client certificates) and --tls-user NAME (the local user its clients act as)",
		         url);
		return WEFT_EINVAL;
	}
	if (proto_tls_config(true, config->tls_cert, config->tls_key, config->tls_ca, NULL,
	                     &server->tls, message, size) != 0)
		return WEFT_EINVAL;
	return WEFT_OK;
}

/* The socket's directory must be ours and writable by nobody else
 * (proto_check_socket_path); with a socket group it is root:GROUP 0750. */
static int secure_directory(const char *socket_path, long group, char *message, size_t size)
{
	if (group >= 0) {
		char directory[4096];
		snprintf(directory, sizeof(directory), "%s", socket_path);
		char *slash = strrchr(directory, '/');
		if (slash != NULL && slash != directory)
			*slash = '\0';
		struct stat st;
		if (lstat(directory, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
		    (chown(directory, geteuid(), (gid_t)group) != 0 || chmod(directory, 0750) != 0)) {
			snprintf(message, size, "cannot give %s to group %ld: %s", directory, group,
			         strerror(errno));
			return WEFT_EINVAL;
		}
	}
	if (proto_check_socket_path(socket_path, (unsigned)geteuid(), 0, 0, message, size) != 0)
		return WEFT_EPERM;
	return WEFT_OK;
}

/* Before listening on an ipc path: refuse a live peer, remove a stale file. */
static int claim_ipc_path(const char *url, char *message, size_t size)
{
	const char *path = proto_ipc_path(url);
	struct stat st;
	if (lstat(path, &st) != 0)
		return WEFT_OK;
	int rv = probe_url(url, PROBE_TIMEOUT_MS);
	if (rv == WEFT_OK || rv == WEFT_ETIMEOUT || rv == WEFT_EPROTO) {
		snprintf(message, size,
		         "another weftd (or another program) is already listening on %s; stop it, or "
		         "give this one another --listen URL",
		         url);
		return WEFT_EBUSY;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(message, size, "%s exists and is not a socket; remove it or choose another path",
		         path);
		return WEFT_EINVAL;
	}
	log_info("removing stale socket %s (nothing answers there)", path);
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(message, size, "cannot remove stale socket %s: %s", path, strerror(errno));
		return WEFT_EINVAL;
	}
	return WEFT_OK;
}

static int listen_on(struct server *server, const char *url, nng_listener *out, char *message,
                     size_t size)
{
	nng_listener listener;
	int rv = nng_listener_create(&listener, server->socket, url);
	if (rv == 0)
		rv = nng_listener_set_size(listener, NNG_OPT_RECVMAXSZ, server->transport_max);
	if (rv == 0 && proto_ipc_path(url) != NULL)
		/* The root daemon's socket is for every local user (its directory is
		 * world-searchable); a user daemon's sits in a 0700 directory. */
		rv = nng_listener_set_int(listener, NNG_OPT_IPC_PERMISSIONS,
		                          server->owner == 0 ? 0666 : 0600);
	if (rv == 0 && proto_tls_url(url))
		rv = nng_listener_set_ptr(listener, NNG_OPT_TLS_CONFIG, server->tls);
	if (rv == 0)
		rv = nng_listener_start(listener, 0);
	if (rv != 0) {
		snprintf(message, size, "cannot listen on %s: %s", url, nng_strerror(rv));
		return rv == NNG_EADDRINUSE ? WEFT_EBUSY : WEFT_EINVAL;
	}
	*out = listener;
	return WEFT_OK;
}

/*
 * Listens for the public ipc URL `url` on a fresh private path beside it and
 * renames that over the public path, so new clients reach this listener and
 * an older one keeps its pipes. When the private path would not fit a
 * socket address, listens on the public path itself (*renamed false). Main
 * thread at start, then the guard thread.
 */
static int listen_fresh(struct server *server, const char *url, nng_listener *out, bool *renamed,
                        char bound[108], char *message, size_t size)
{
	const char *public_path = proto_ipc_path(url);
	char private_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char private_url[sizeof(private_path) + 8];
	int n = snprintf(private_path, sizeof(private_path), "%s.%u", public_path,
	                 ++server->generation);
	if (n < 0 || (size_t)n >= sizeof(private_path)) {
		*renamed = false;
		return listen_on(server, url, out, message, size);
	}
	snprintf(private_url, sizeof(private_url), "ipc://%s", private_path);
	unlink(private_path); /* left by a daemon that died between bind and rename */
	nng_listener listener;
	int rv = listen_on(server, private_url, &listener, message, size);
	if (rv != WEFT_OK)
		return rv;
	if (rename(private_path, public_path) != 0) {
		snprintf(message, size, "cannot rename %s over %s: %s", private_path, public_path,
		         strerror(errno));
		nng_listener_close(listener);
		unlink(private_path);
		return WEFT_EINVAL;
	}
	*renamed = true;
	snprintf(bound, 108, "%s", private_path);
	*out = listener;
	return WEFT_OK;
}

int server_start(const struct server_config *config, struct server **out, char *message,
                 size_t size)
{
	struct server *server = memory_zalloc(sizeof(*server));
	int rv;
	pthread_mutex_init(&server->lock, NULL);
	pthread_mutex_init(&server->pipes_lock, NULL);
	pthread_mutex_init(&server->queue.lock, NULL);
	pthread_cond_init(&server->queue.ready, NULL);
	server->handler = config->handler;
	server->pipe_closed = config->pipe_closed;
	server->context = config->context;
	server->owner = geteuid();
	server->tcp_user = principal_ref(config->tcp_user);
	server->tls_user = principal_ref(config->tls_user);
	server->transport_max = config->max_message * PROTO_TRANSPORT_SLACK_FACTOR;
	server->idle_timeout = config->idle_timeout;
	if ((rv = nng_rep0_open(&server->socket)) != 0) {
		snprintf(message, size, "cannot open an nng REP socket: %s", nng_strerror(rv));
		requests_free(server);
		pthread_mutex_destroy(&server->lock);
		pthread_mutex_destroy(&server->pipes_lock);
		free(server);
		return WEFT_EINTERNAL;
	}
	/* Before any listener: a request may come as soon as one listens. */
	if ((rv = requests_start(server)) != WEFT_OK) {
		snprintf(message, size, "cannot start weftd's request threads");
		goto fail;
	}
	/* Set before any listener exists: nng allocates what a peer declares. */
	nng_socket_set_size(server->socket, NNG_OPT_RECVMAXSZ, server->transport_max);
	nng_pipe_notify(server->socket, NNG_PIPE_EV_ADD_PRE, on_pipe_event, server);
	nng_pipe_notify(server->socket, NNG_PIPE_EV_REM_POST, on_pipe_event, server);

	server->listeners = memory_zalloc(config->url_count * sizeof(*server->listeners));
	for (size_t i = 0; i < config->url_count; i++) {
		const char *url = config->urls[i];
		const char *path = proto_ipc_path(url);
		bool tls = proto_tls_url(url);
		if (tls && (rv = tls_setup(server, config, url, message, size)) != WEFT_OK)
			goto fail;
		if (path == NULL && !tls && config->tcp_user == NULL) {
			/* A transport without credentials would make every peer
			 * anonymous, and a user's daemon every peer that user. */
			snprintf(message, size,
			         "refusing to listen on %s: its peers carry no credentials, so anyone "
			         "who reaches it would act as a local user. Use ipc:// (across "
			         "machines: ssh -L /local.sock:/run/weft/weft.sock HOST), or name the "
			         "one user its peers act as with --insecure-tcp-user NAME",
			         url);
			rv = WEFT_EPERM;
			goto fail;
		}
		if (path != NULL) {
			mode_t mode = config->socket_group >= 0 ? 0750 : server->owner == 0 ? 0755 : 0700;
			if ((rv = make_directory(path, mode, message, size)) != WEFT_OK)
				goto fail;
			if ((rv = secure_directory(path, config->socket_group, message, size)) !=
			    WEFT_OK)
				goto fail;
			if ((rv = claim_ipc_path(url, message, size)) != WEFT_OK)
				goto fail;
		}
		struct listener *entry = &server->listeners[i];
		rv = path != NULL ? listen_fresh(server, url, &entry->listener, &entry->renamed,
		                                 entry->bound, message, size)
		                  : listen_on(server, url, &entry->listener, message, size);
		if (rv != WEFT_OK)
			goto fail;
		entry->url = memory_strdup(url);
		server->listener_count = i + 1;
		log_info("listening on %s", url);
	}
	top_up_receivers(server);
	if ((rv = guard_start(server)) != WEFT_OK) {
		snprintf(message, size, "cannot start the listener guard's thread");
		goto fail;
	}
	*out = server;
	return WEFT_OK;

fail:
	server_stop(server);
	return rv;
}

/* Re-creates a listener that missed its pings. Guard thread. */
static void recreate_listener(struct server *server, struct listener *entry)
{
	char message[256];
	if (entry->renamed) {
		log_warn("listener on %s stopped answering new connections (nng 1.5 defect after a "
		         "client hung up mid-handshake); listening afresh, established "
		         "connections stay on the old listener",
		         entry->url);
		nng_listener fresh;
		bool renamed;
		char bound[108];
		if (listen_fresh(server, entry->url, &fresh, &renamed, bound, message,
		                 sizeof(message)) != WEFT_OK) {
			/* The old listener and the public name stay as they are. */
			log_error("%s; keeping the old listener, will try again", message);
			return;
		}
		server->retired = memory_realloc(server->retired, (server->retired_count + 1) *
		                                                          sizeof(*server->retired));
		struct retired *old = &server->retired[server->retired_count++];
		*old = (struct retired){.listener = entry->listener};
		snprintf(old->bound, sizeof(old->bound), "%s", entry->bound);
		entry->listener = fresh;
		entry->renamed = renamed;
		snprintf(entry->bound, sizeof(entry->bound), "%s", bound);
	} else {
		const char *path = proto_ipc_path(entry->url);
		log_warn("listener on %s stopped answering new connections (nng 1.5 defect after a "
		         "client hung up mid-handshake); re-creating it, which resets its clients "
		         "(only an ipc listener with a short enough path can be swapped without)",
		         entry->url);
		/* Closing it closes its pipes (nng), and an ipc one's socket file. */
		nng_listener_close(entry->listener);
		if (path != NULL)
			unlink(path);
		if (listen_on(server, entry->url, &entry->listener, message, sizeof(message)) !=
		    WEFT_OK) {
			log_error("%s; will try again", message);
			return;
		}
	}
	entry->failures = 0;
	atomic_fetch_add_explicit(&server->guard.recreated, 1, memory_order_relaxed);
	log_info("listening again on %s", entry->url);
}

/* Where the descriptors bound to a retired listener's name are: by number
 * and socket inode. */
struct bound_socket {
	int fd;
	unsigned long inode;
};

static int compare_inodes(const void *a, const void *b)
{
	unsigned long left = *(const unsigned long *)a, right = *(const unsigned long *)b;
	return left < right ? -1 : left > right;
}

/* The inode of the socket descriptor fd holds now, or 0 (not a socket, or
 * closed), read from its /proc/self/fd link: the descriptor itself is not
 * touched. */
static unsigned long socket_inode_at(int directory, const char *name)
{
	char target[64];
	ssize_t length = readlinkat(directory, name, target, sizeof(target) - 1);
	if (length <= 0)
		return 0;
	target[length] = '\0';
	unsigned long inode = 0;
	return sscanf(target, "socket:[%lu]", &inode) == 1 ? inode : 0;
}

/*
 * This process's descriptors that are unix sockets whose local name is
 * `path` (a retired listener's private name, which every connection it
 * accepted carries): at most `max` into `found`; returns how many. Found
 * without touching any other descriptor: the kernel's table of unix
 * sockets (/proc/net/unix) gives the inodes bound to the path, and the links
 * in /proc/self/fd the inode behind each number. An fstat and getsockname of
 * every descriptor, as before, raced with the worker threads that open and
 * close job pipes and cgroup files (ThreadSanitizer reported it, and a
 * number can change hands between two calls). Guard thread.
 */
static size_t sockets_bound_to(const char *path, struct bound_socket *found, size_t max)
{
	FILE *table = fopen("/proc/net/unix", "re");
	if (table == NULL)
		return 0;
	unsigned long *inodes = NULL; /* owned here */
	size_t inode_count = 0, inode_room = 0;
	char line[512];
	size_t path_length = strlen(path);
	while (fgets(line, sizeof(line), table) != NULL) {
		/* Num RefCount Protocol Flags Type St Inode Path */
		unsigned long inode;
		int at = 0;
		if (sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %n", &inode, &at) != 1 || at == 0)
			continue;
		const char *name = line + at;
		if (strncmp(name, path, path_length) != 0 ||
		    (name[path_length] != '\n' && name[path_length] != '\0'))
			continue;
		if (inode_count == inode_room) {
			size_t room = inode_room == 0 ? 64 : inode_room * 2;
			unsigned long *grown = realloc(inodes, room * sizeof(*grown));
			if (grown == NULL)
				break; /* what was found so far; the next round looks again */
			inodes = grown;
			inode_room = room;
		}
		inodes[inode_count++] = inode;
	}
	fclose(table);
	size_t count = 0;
	DIR *directory = inode_count > 0 ? opendir("/proc/self/fd") : NULL;
	if (directory != NULL) {
		qsort(inodes, inode_count, sizeof(*inodes), compare_inodes);
		struct dirent *item;
		while ((item = readdir(directory)) != NULL && count < max) {
			if (item->d_name[0] == '.')
				continue;
			unsigned long inode = socket_inode_at(dirfd(directory), item->d_name);
			if (inode != 0 &&
			    bsearch(&inode, inodes, inode_count, sizeof(*inodes), compare_inodes) != NULL) {
				found[count].fd = atoi(item->d_name);
				found[count++].inode = inode;
			}
		}
		closedir(directory);
	}
	free(inodes);
	return count;
}

/* Whether descriptor fd still holds the socket `inode`. */
static bool still_holds(int fd, unsigned long inode)
{
	char name[32];
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	return socket_inode_at(AT_FDCWD, name) == inode;
}

/*
 * Closes what nng 1.5.2 leaks when a stuck listener closes: the connections
 * it took but never attached are never freed, so their descriptors stay open
 * for good (about 3 per #1518 hit, which at 1 hit a second exhausts the
 * descriptors within the hour). A descriptor that still carries the closed
 * listener's private path as its local name can only be one of those or one
 * nng is still closing (no live listener has that name); only one that has
 * held the same socket for LEAKED_ROUNDS rounds in a row is closed, so that
 * nng never closes a number the guard closed (and someone else got since).
 * Returns whether any descriptor still bears the name. Guard thread.
 */
static bool close_leaked(struct retired *old)
{
	struct bound_socket bound[RETIRED_SUSPECTS], leaked[RETIRED_SUSPECTS];
	size_t bound_count = sockets_bound_to(old->bound, bound, RETIRED_SUSPECTS);
	size_t count = 0, kept = 0;
	for (size_t b = 0; b < bound_count; b++) {
		int rounds = 1;
		for (size_t i = 0; i < old->leak_count; i++)
			if (old->leaks[i].fd == bound[b].fd && old->leaks[i].inode == bound[b].inode)
				rounds = old->leaks[i].rounds + 1;
		if (rounds >= LEAKED_ROUNDS) {
			leaked[count++] = bound[b];
			continue;
		}
		old->leaks[kept].fd = bound[b].fd;
		old->leaks[kept].inode = bound[b].inode;
		old->leaks[kept++].rounds = rounds;
	}
	old->leak_count = kept;
	for (size_t i = 0; i < count; i++)
		/* Still that socket, looked at again just before. */
		if (still_holds(leaked[i].fd, leaked[i].inode))
			close(leaked[i].fd);
	if (count > 0)
		log_debug("closed %zu connections nng leaked in a stuck listener", count);
	return kept > 0;
}

/*
 * Resets the connections a retired listener took in the transport but never
 * attached to the socket (#1518: clients that connected while it was stuck).
 * They are not pipes, so nothing reads them: their client's request sits
 * unread. Such a connection is found by its local name (the listener's
 * private path, which every connection it accepted carries) and by unread
 * bytes that did not change over two rounds; shutdown() makes its client
 * see the connection end at once instead of waiting for a reply that cannot
 * come (a REQ client without resend fails its request and may redial the
 * public name, now the new listener). A busy attached pipe can show the same count (a client
 * repeating one request), so the unread message itself is compared: its
 * first SUSPECT_HEAD bytes hold the REQ request id, new with each request.
 * The same message unread for UNREAD_ROUNDS_NO_PIPE rounds is reset when
 * the peer process has no pipe on this listener, for UNREAD_ROUNDS_PEER_PIPE
 * when it has (it might be that pipe, stalled). shutdown, unlike close,
 * leaves nng's descriptor valid for nng to close later. Guard thread.
 */
static void reset_unattached(struct server *server, struct retired *old)
{
	uint32_t id = (uint32_t)nng_listener_id(old->listener);
	struct bound_socket bound[RETIRED_SUSPECTS];
	size_t bound_count = sockets_bound_to(old->bound, bound, RETIRED_SUSPECTS);
	size_t kept = 0;
	for (size_t b = 0; b < bound_count; b++) {
		int fd = bound[b].fd;
		unsigned long inode = bound[b].inode;
		int bytes = 0;
		unsigned char head[SUSPECT_HEAD] = {0};
		if (ioctl(fd, FIONREAD, &bytes) != 0 || bytes <= 0)
			continue;
		/* Looking does not take the bytes from nng. */
		if (recv(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT) < 0)
			continue;
		int rounds = 0; /* rounds in a row this same message was seen unread */
		bool reset = false;
		for (size_t i = 0; i < old->suspect_count; i++) {
			if (old->suspects[i].inode != inode)
				continue;
			reset = old->suspects[i].bytes == -1;
			if (old->suspects[i].bytes == bytes &&
			    memcmp(old->suspects[i].head, head, sizeof(head)) == 0)
				rounds = old->suspects[i].rounds + 1;
		}
		struct ucred peer;
		socklen_t peer_length = sizeof(peer);
		if (!reset && rounds >= UNREAD_ROUNDS_NO_PIPE &&
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_length) == 0 &&
		    (rounds >= UNREAD_ROUNDS_PEER_PIPE ||
		     !listener_has_peer(server, id, (uint64_t)peer.pid))) {
			/* The listening socket itself has no bytes to read, so this is a
			 * connection, and one whose message nng has not read for
			 * rounds: not attached (an attached pipe is read within
			 * milliseconds). Reset it, once (nng keeps the descriptor
			 * until the listener closes). */
			shutdown(fd, SHUT_RDWR);
			log_info("reset a connection the stuck listener never attached; its client "
			         "will reconnect");
			reset = true;
		}
		old->suspects[kept].inode = inode;
		old->suspects[kept].bytes = reset ? -1 : bytes;
		memcpy(old->suspects[kept].head, head, sizeof(head));
		old->suspects[kept++].rounds = rounds;
	}
	old->suspect_count = kept;
}

/* Closes retired listeners whose pipes are all gone. Guard thread. */
static void reap_retired(struct server *server)
{
	size_t kept = 0;
	for (size_t i = 0; i < server->retired_count; i++) {
		struct retired *old = &server->retired[i];
		if (old->idle_rounds < 0) {
			/* Closed: what keeps bearing its name is nng's leak. */
			if (close_leaked(old) && ++old->closed_rounds < LEAK_WATCH_ROUNDS)
				server->retired[kept++] = *old;
			continue;
		}
		reset_unattached(server, old);
		if (pipes_of_listener(server, (uint32_t)nng_listener_id(old->listener)) > 0)
			old->idle_rounds = 0;
		else if (++old->idle_rounds >= RETIRED_IDLE_ROUNDS) {
			nng_listener_close(old->listener);
			log_debug("closed a replaced listener: its last connection has gone");
			old->idle_rounds = -1;
		}
		server->retired[kept++] = *old;
	}
	server->retired_count = kept;
	atomic_store_explicit(&server->guard.retired, kept, memory_order_relaxed);
}

/* One round: each listener checked end to end with a ping. Guard thread. */
/*
 * The idle deadline: a connection with no request in flight that has sent no
 * whole message for --idle-timeout is closed. nng reads a message's declared
 * length before its body, so a peer that sends part of one and stalls holds
 * that much memory until the pipe closes; this bounds how long. A connection
 * whose request is in flight (a long poll) is left alone: it cannot be told
 * apart from one that waits for its reply. Clients redial when they need to
 * (nng's dialer does it). Guard thread; at most IDLE_CLOSE_BATCH a round.
 */
#define IDLE_CLOSE_BATCH 256
static void close_idle(struct server *server)
{
	if (server->idle_timeout <= 0)
		return;
	uint32_t idle[IDLE_CLOSE_BATCH];
	size_t count = 0;
	double before = monotonic_seconds() - server->idle_timeout;
	pthread_mutex_lock(&server->pipes_lock);
	for (size_t i = 0; i < PIPE_BUCKETS && count < IDLE_CLOSE_BATCH; i++)
		for (struct pipe_entry *entry = server->pipes[i];
		     entry != NULL && count < IDLE_CLOSE_BATCH; entry = entry->next)
			if (entry->in_flight == 0 && entry->last_active < before)
				idle[count++] = entry->pipe;
	pthread_mutex_unlock(&server->pipes_lock);
	for (size_t i = 0; i < count; i++) {
		nng_pipe pipe = NNG_PIPE_INITIALIZER;
		pipe.id = idle[i];
		/* ENOENT: it closed meanwhile. */
		if (nng_pipe_close(pipe) == 0)
			atomic_fetch_add_explicit(&server->guard.idle_closed, 1, memory_order_relaxed);
	}
	if (count > 0)
		log_debug("closed %zu connections idle for over %g s (--idle-timeout)", count,
		          server->idle_timeout);
}

static void guard_round(struct server *server)
{
	static const char ping[] = GUARD_PING;
	for (size_t i = 0; i < server->listener_count; i++) {
		struct listener *entry = &server->listeners[i];
		int rv = probe_request(entry->url, ping, LISTENER_PING_MS);
		if (rv == WEFT_OK) {
			entry->failures = 0;
			if (server->out_of_fds)
				log_info("file descriptors are available again");
			server->out_of_fds = false;
			continue;
		}
		if (rv == WEFT_EBUSY) {
			/* Overload, not a stuck listener: keep everything as it is. */
			if (!server->out_of_fds)
				log_warn("weftd is out of file descriptors (see ulimit -n, "
				         "--max-connections-per-user): new connections wait or fail "
				         "until some close; established ones are served");
			server->out_of_fds = true;
			continue;
		}
		atomic_fetch_add_explicit(&server->guard.failed_probes, 1, memory_order_relaxed);
		log_debug("listener %s missed a ping: %s", entry->url, weft_strerror(rv));
		if (++entry->failures >= LISTENER_FAILURES_TO_RECREATE)
			recreate_listener(server, entry);
	}
	reap_retired(server);
	close_idle(server);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now); /* the clock of now_monotonic(), which stats uses */
	atomic_store_explicit(&server->guard.last_round_us,
	                      (int_least64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000,
	                      memory_order_relaxed);
	atomic_fetch_add_explicit(&server->guard.rounds, 1, memory_order_relaxed);
}

static struct timespec monotonic_after_ms(long milliseconds)
{
	struct timespec at;
	clock_gettime(CLOCK_MONOTONIC, &at);
	at.tv_sec += milliseconds / 1000;
	at.tv_nsec += (milliseconds % 1000) * 1000000L;
	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	return at;
}

/* The guard thread: a round every LISTENER_WATCH_MS until server_stop. */
static void *guard_main(void *argument)
{
	struct server *server = argument;
	struct guard *guard = &server->guard;
	pthread_mutex_lock(&guard->lock);
	while (!guard->stop) {
		struct timespec until = monotonic_after_ms(LISTENER_WATCH_MS);
		int rv = 0;
		while (!guard->stop && rv != ETIMEDOUT)
			rv = pthread_cond_timedwait(&guard->wake, &guard->lock, &until);
		if (guard->stop)
			break;
		/* Not held during the round: server_stop must be able to ask for
		 * the stop while a probe waits. */
		pthread_mutex_unlock(&guard->lock);
		guard_round(server);
		pthread_mutex_lock(&guard->lock);
	}
	pthread_mutex_unlock(&guard->lock);
	return NULL;
}

static int guard_start(struct server *server)
{
	struct guard *guard = &server->guard;
	pthread_condattr_t attributes;
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&guard->wake, &attributes);
	pthread_condattr_destroy(&attributes);
	pthread_mutex_init(&guard->lock, NULL);
	int rv = pthread_create(&guard->thread, NULL, guard_main, server);
	if (rv != 0) {
		pthread_cond_destroy(&guard->wake);
		pthread_mutex_destroy(&guard->lock);
		return WEFT_EINTERNAL;
	}
	pthread_setname_np(guard->thread, "weft-guard");
	guard->started = true;
	return WEFT_OK;
}

/* Asks the guard to stop and waits up to GUARD_STOP_MS. WEFT_ETIMEOUT when it
 * is stuck (in nng, re-creating a listener): it is then left running, and
 * whatever it uses must not be freed. */
static int guard_stop(struct server *server)
{
	struct guard *guard = &server->guard;
	if (!guard->started)
		return WEFT_OK;
	pthread_mutex_lock(&guard->lock);
	guard->stop = true;
	pthread_cond_signal(&guard->wake);
	pthread_mutex_unlock(&guard->lock);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until); /* pthread_timedjoin_np counts on the wall clock */
	until.tv_sec += GUARD_STOP_MS / 1000;
	if (pthread_timedjoin_np(guard->thread, NULL, &until) != 0) {
		log_warn("the listener guard did not stop within %d ms (stuck in nng re-creating a "
		         "listener); leaving it",
		         GUARD_STOP_MS);
		pthread_detach(guard->thread);
		guard->started = false;
		return WEFT_ETIMEOUT;
	}
	guard->started = false;
	pthread_cond_destroy(&guard->wake);
	pthread_mutex_destroy(&guard->lock);
	return WEFT_OK;
}

void server_guard_stats(struct server *server, struct server_guard_stats *stats)
{
	struct guard *guard = &server->guard;
	stats->rounds = atomic_load_explicit(&guard->rounds, memory_order_relaxed);
	stats->failed_probes = atomic_load_explicit(&guard->failed_probes, memory_order_relaxed);
	stats->recreated = atomic_load_explicit(&guard->recreated, memory_order_relaxed);
	stats->retired = atomic_load_explicit(&guard->retired, memory_order_relaxed);
	stats->last_round =
		(double)atomic_load_explicit(&guard->last_round_us, memory_order_relaxed) / 1e6;
	stats->every = LISTENER_WATCH_MS / 1000.0;
	stats->idle_closed = atomic_load_explicit(&guard->idle_closed, memory_order_relaxed);
}

int server_stop(struct server *server)
{
	if (server == NULL)
		return WEFT_OK;
	/* First the guard, which could otherwise re-create a listener on the
	 * closing socket. If it is stuck, the server's memory stays its. */
	int rv = guard_stop(server);
	atomic_store(&server->closing, true);
	/* The requests being handled are answered; those still queued and any
	 * that come now are not (a request thread is gone, or never takes them). */
	requests_stop(server);
	nng_close(server->socket);
	pthread_mutex_lock(&server->lock);
	struct server_request *slot = server->all;
	server->all = server->idle = NULL;
	pthread_mutex_unlock(&server->lock);
	while (slot != NULL) {
		struct server_request *next = slot->next_all;
		nng_aio_stop(slot->aio);
		/* A reply made while the stop waited for this slot's callback (a
		 * submit answered during shutdown) found the aio stopped: nng kept
		 * the message on it and called nothing, so it is freed here. */
		nng_msg *unsent = nng_aio_get_msg(slot->aio);
		if (unsent != NULL)
			nng_msg_free(unsent);
		if (slot->message != NULL) /* queued, never handled */
			nng_msg_free(slot->message);
		nng_aio_free(slot->aio);
		nng_ctx_close(slot->context);
		free(slot);
		slot = next;
	}
	for (size_t i = 0; i < server->listener_count; i++) {
		const char *path = proto_ipc_path(server->listeners[i].url);
		if (path != NULL)
			unlink(path);
	}
	if (rv != WEFT_OK)
		return rv;
	for (size_t i = 0; i < server->listener_count; i++)
		free(server->listeners[i].url);
	free(server->listeners);
	free(server->retired); /* their listeners closed with the socket */
	principal_unref(server->tcp_user);
	principal_unref(server->tls_user);
	if (server->tls != NULL)
		nng_tls_config_free(server->tls);
	/* The socket is closed: no pipe event runs any more. */
	for (size_t i = 0; i < PIPE_BUCKETS; i++) {
		while (server->pipes[i] != NULL) {
			struct pipe_entry *entry = server->pipes[i];
			server->pipes[i] = entry->next;
			principal_unref(entry->principal);
			free(entry);
		}
	}
	requests_free(server);
	pthread_mutex_destroy(&server->pipes_lock);
	pthread_mutex_destroy(&server->lock);
	free(server);
	return WEFT_OK;
}
