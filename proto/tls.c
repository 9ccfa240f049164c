/* See tls.h. */
#include "proto/tls.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A certificate chain or key is a few KiB; anything past this is not one. */
#define PEM_MAX (1024 * 1024)

bool proto_tls_url(const char *url)
{
	return strncmp(url, "tls+tcp://", 10) == 0 || strncmp(url, "tls+tcp4://", 11) == 0 ||
	       strncmp(url, "tls+tcp6://", 11) == 0;
}

/* The whole of a PEM file, NUL-terminated (nng wants text). Returns 0 and
 * *out (the caller frees it), or -1 with the message. */
static int read_pem(const char *what, const char *path, char **out, char *message, size_t size)
{
	FILE *file = fopen(path, "re");
	if (file == NULL) {
		snprintf(message, size, "cannot read the TLS %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	char *text = malloc(PEM_MAX + 1);
	size_t length = text != NULL ? fread(text, 1, PEM_MAX + 1, file) : 0;
	bool failed = text == NULL || ferror(file);
	fclose(file);
	if (failed || length == 0 || length > PEM_MAX) {
		snprintf(message, size, "the TLS %s %s is %s", what, path,
		         text == NULL ? "too large for memory"
		         : failed     ? "unreadable"
		         : length == 0 ? "empty"
		                       : "larger than 1 MiB; give a PEM file");
		free(text);
		return -1;
	}
	text[length] = '\0';
	*out = text;
	return 0;
}

int proto_tls_config(bool server, const char *cert_file, const char *key_file,
                     const char *ca_file, const char *server_name,
                     struct nng_tls_config **out, char *message, size_t size)
{
	nng_tls_config *config = NULL;
	char *cert = NULL, *key = NULL;
	int rv;
	if (read_pem("certificate", cert_file, &cert, message, size) != 0 ||
	    read_pem("key", key_file, &key, message, size) != 0)
		goto fail;
	if ((rv = nng_tls_config_alloc(&config, server ? NNG_TLS_MODE_SERVER
	                                               : NNG_TLS_MODE_CLIENT)) != 0) {
		snprintf(message, size, "cannot set up TLS: %s", nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_tls_config_own_cert(config, cert, key, NULL)) != 0) {
		snprintf(message, size,
		         "the TLS certificate %s and key %s do not make a pair (or are not PEM): %s",
		         cert_file, key_file, nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_tls_config_ca_file(config, ca_file)) != 0) {
		snprintf(message, size, "cannot use %s as the TLS CA (a PEM certificate): %s",
		         ca_file, nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_tls_config_auth_mode(config, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
	    (server_name != NULL && (rv = nng_tls_config_server_name(config, server_name)) != 0)) {
		snprintf(message, size, "cannot set up TLS: %s", nng_strerror(rv));
		goto fail;
	}
	free(cert);
	explicit_bzero(key, strlen(key)); /* a secret: not left in freed memory */
	free(key);
	*out = config;
	return 0;
fail:
	if (config != NULL)
		nng_tls_config_free(config);
	if (key != NULL) {
		explicit_bzero(key, strlen(key));
		free(key);
	}
	free(cert);
	return -1;
}
