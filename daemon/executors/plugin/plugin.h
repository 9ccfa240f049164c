/*
 * Plugins (include/weft/plugin.h): shared objects named by --plugin, whose
 * functions join the registry at start and run as coroutine tasks of the
 * runtime, loop code on the workers or blocking code through the thread pool
 * (plugin.c).
 */
#ifndef PLUGIN_H
#define PLUGIN_H

#include <stddef.h>

/*
 * Loads the plugin at path and registers its functions. On a root daemon
 * the file must be a regular file owned by root and writable by no group or
 * other user; it is opened once, checked on that descriptor and loaded from
 * it, so it cannot be swapped between the check and the load. Returns
 * WEFT_OK, or an error with what to change in message[size]. Main thread,
 * before the workers start (after the built-ins are registered).
 */
int plugin_load(const char *path, char *message, size_t size);

/*
 * Loads every "*.so" in directory (not starting with '.'), in name order,
 * as plugin_load does each; the first one refused stops it. On a root
 * daemon the directory itself must be owned by root and writable by no group
 * or other user (else another user could put or rename files in it).
 * Returns WEFT_OK, or an error with message[size]. Main thread, as
 * plugin_load.
 */
int plugin_load_dir(const char *directory, char *message, size_t size);

/* Frees what the loaded plugins' registrations took. Main thread, at exit,
 * after the workers stopped (no plugin code runs any more). */
void plugin_fini(void);

#endif
