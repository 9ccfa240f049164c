/*
 * TLS for tls+tcp:// listeners and dialers, shared by weftd and libweft so the
 * two make the same demands: TLS 1.2 (what Debian's nng 1.5 with mbedTLS
 * has), a certificate on each side, and each side verifying the other's
 * against a CA the operator chose. Any thread.
 */
#ifndef PROTO_TLS_H
#define PROTO_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct nng_tls_config;

/* Whether url is a tls+tcp:// URL. */
bool proto_tls_url(const char *url);

/*
 * A TLS configuration for a listener (server true) or a dialer: our
 * certificate and its private key (PEM files), the CA that must have signed
 * the peer's certificate, and for a dialer the name the server's certificate
 * must carry (NULL: the host is not checked). Peer certificates are required
 * both ways. Returns 0 and *out (freed with nng_tls_config_free), or -1 with
 * a message for the user that says which file is at fault and why.
 */
int proto_tls_config(bool server, const char *cert_file, const char *key_file,
                     const char *ca_file, const char *server_name,
                     struct nng_tls_config **out, char *message, size_t size);

#endif
