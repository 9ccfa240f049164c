/*
 * http.get and http.request: HTTP(S) transfers on the worker loops through
 * libcurl's multi interface, with no thread per transfer (http.c).
 *
 * Each worker has one curl multi handle per owner, driven by its own
 * event_base: curl asks for the sockets and the timer it needs
 * (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION) and the loop tells it
 * when they fire. A multi handle's connection cache is the pool of one
 * (worker, owner): keep-alive connections are reused by that owner's next
 * transfer to the same host, never by another user's, and closed once the
 * owner has had no transfer on that worker for HTTP_IDLE_SECONDS.
 *
 * What a job may reach: http:// and https:// URLs only (never file://,
 * ftp://, a unix socket or another scheme, even through a redirect); TLS peer
 * and host verification are always on. Names are resolved by libcurl's own
 * resolver thread, off the loop; numeric addresses and "localhost" need no
 * resolution. Nothing is written to disk.
 */
#ifndef HTTP_H
#define HTTP_H

struct event_base;
struct function;

extern const struct function http_get_function;
extern const struct function http_request_function;

/* A worker stops transfers only after this long with none running. */
#define HTTP_IDLE_SECONDS 30

/* Largest response body a job may ask for (max_size), and the default. */
#define HTTP_BODY_MAX (16u << 20)
#define HTTP_BODY_DEFAULT (1u << 20)

/* libcurl's global set-up: main thread, before the workers start. Returns
 * WEFT_OK or WEFT_EINTERNAL. */
int http_init(void);
/* Main thread, after the workers stopped. */
void http_fini(void);

/* A worker's thread, as it stops: closes its pool (daemon.c, worker_exit). */
void http_worker_exit(struct event_base *base);

#endif
