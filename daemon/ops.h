/*
 * The protocol's ops: decodes a request and answers it, at once or through a
 * waiter. ops_handle is the server's request handler (server.h): it runs on
 * the server's request threads with the struct weftd as its context.
 */
#ifndef OPS_H
#define OPS_H

#include <stddef.h>

struct server_request;

void ops_handle(void *context, struct server_request *request, const void *body, size_t size);

#endif
