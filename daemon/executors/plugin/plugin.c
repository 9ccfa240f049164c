/*
 * Plugins; see plugin.h and include/weft/plugin.h.
 *
 * Every plugin function becomes a `struct function` of executor "task",
 * made here at load and kept until exit (implementation points at the
 * plugin's own description). A job's attempt runs one task: its body calls
 * the plugin's run directly (loop functions) or through weft_run_in_thread
 * (thread functions); the task's end is posted back to the attempt's worker,
 * which completes or fails the attempt, as the task executor does for its
 * own functions. Cancelling cancels the task.
 *
 * Shared objects are never unloaded: code of theirs may be on a task's stack
 * until the runtime is gone.
 */
#include "daemon/executors/plugin/plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/core/principal.h"
#include "daemon/runtime/runtime.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/workers.h"
#include "proto/proto.h"
#include "weft/executor.h"
#include "weft/plugin.h"

#define PLUGINS_MAX 16

/* What a registration made: main thread only (load and fini). */
struct loaded {
	struct function *functions;          /* owned, count of them */
	struct function_argument **arguments; /* owned, one array per function */
	char ***descriptions;                /* owned: their descriptions, one array per function */
	size_t count;
};
static struct loaded loaded[PLUGINS_MAX];
static size_t loaded_count;

/* One attempt's task; attempt->data while it runs. Freed on the attempt's
 * worker once the task's end is back. */
struct plugin_run {
	const struct weft_plugin_function *function; /* the plugin's, static */
	struct weft_plugin_call call;
	int thread_rv; /* what run returned on the pool thread */
	weft_task *task;
	struct job_attempt *attempt; /* a reference (runner_attempt_hold) */
};

/* ---- running ---- */

/* Pool thread (thread functions). */
static void *run_blocking(void *argument)
{
	struct plugin_run *run = argument;
	run->thread_rv = run->function->run(&run->call);
	return NULL;
}

/* Task body, on a worker. */
static int run_body(void *argument)
{
	struct plugin_run *run = argument;
	int rv;
	if (run->function->executor == WEFT_PLUGIN_THREAD) {
		rv = weft_run_in_thread(run_blocking, run, NULL);
		if (rv == WEFT_OK)
			rv = run->thread_rv;
	} else {
		rv = run->function->run(&run->call);
	}
	json_t *result = run->call.result;
	run->call.result = NULL;
	if (rv != WEFT_OK) {
		json_decref(result); /* a cancelled call may still have made one */
		return rv;
	}
	return weft_return_json(result != NULL ? result : json_null());
}

/* The job's worker: the task is over. */
static void finish_on_worker(void *argument)
{
	struct plugin_run *run = argument;
	struct job_attempt *attempt = run->attempt;
	if (attempt->data == run) {
		attempt->data = NULL;
		int error = weft_task_error(run->task);
		json_t *result = weft_task_result(run->task);
		if (error == WEFT_OK)
			runner_complete(attempt, result != NULL ? json_incref(result) : json_null());
		else if (error == WEFT_ECANCELED)
			runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_CANCELLED), NULL, "%s: cancelled",
			            run->function->name);
		else
			runner_fail(attempt,
			            run->call.error_type[0] != '\0' ? run->call.error_type : "PluginError",
			            NULL, "%s: %s", run->function->name,
			            run->call.error_message[0] != '\0' ? run->call.error_message
			                                               : weft_strerror(error));
	}
	weft_task_release(run->task);
	free(run);
	runner_attempt_release(attempt);
}

/* The worker that completed the task. */
static void task_done(weft_task *task, void *argument)
{
	(void)task;
	struct plugin_run *run = argument;
	workers_post(run->attempt->worker, finish_on_worker, run);
}

static void plugin_start(struct job_attempt *attempt)
{
	struct job *job = attempt->job;
	struct plugin_run *run = memory_zalloc(sizeof(*run));
	run->function = job->function->implementation;
	run->call.args = job->args;
	run->call.owner_uid = job->owner->uid;
	run->call.owner_gid = job->owner->gid;
	run->attempt = attempt;
	runner_attempt_hold(attempt);
	attempt->data = run;
	weft_spawn_options options = {
		.name = job->function->name,
		.on_done = task_done,
		.on_done_argument = run,
	};
	int rv = runtime_inject(workers_runtime(runner_workers()), run_body, run, &options, &run->task);
	if (rv != WEFT_OK) {
		attempt->data = NULL;
		free(run);
		runner_fail(attempt, "TaskError", NULL, "cannot start the task: %s", weft_strerror(rv));
		runner_attempt_release(attempt);
	}
}

static void plugin_stop(struct job_attempt *attempt)
{
	struct plugin_run *run = attempt->data;
	if (run == NULL)
		return;
	attempt->data = NULL; /* its end, when it comes, is dropped */
	weft_cancel(run->task);
}

static const char *type_name(enum weft_plugin_type type)
{
	switch (type) {
	case WEFT_PLUGIN_STRING:
		return "a string";
	case WEFT_PLUGIN_INTEGER:
		return "an integer";
	case WEFT_PLUGIN_NUMBER:
		return "a number";
	case WEFT_PLUGIN_BOOLEAN:
		return "a boolean";
	case WEFT_PLUGIN_ARRAY:
		return "an array";
	case WEFT_PLUGIN_OBJECT:
		return "an object";
	case WEFT_PLUGIN_ANY:
	default:
		return "of any type";
	}
}

static bool type_matches(enum weft_plugin_type type, const json_t *value)
{
	switch (type) {
	case WEFT_PLUGIN_STRING:
		return json_is_string(value);
	case WEFT_PLUGIN_INTEGER:
		return json_is_integer(value);
	case WEFT_PLUGIN_NUMBER:
		return json_is_number(value);
	case WEFT_PLUGIN_BOOLEAN:
		return json_is_boolean(value);
	case WEFT_PLUGIN_ARRAY:
		return json_is_array(value);
	case WEFT_PLUGIN_OBJECT:
		return json_is_object(value);
	case WEFT_PLUGIN_ANY:
	default:
		return true;
	}
}

/* What the bounds measure for type ("" when they apply to nothing). */
static const char *bounded(enum weft_plugin_type type)
{
	switch (type) {
	case WEFT_PLUGIN_STRING:
		return "bytes long";
	case WEFT_PLUGIN_ARRAY:
		return "values long";
	case WEFT_PLUGIN_INTEGER:
	case WEFT_PLUGIN_NUMBER:
		return "in value";
	default:
		return "";
	}
}

/* The arguments against what the plugin declared: present when required,
 * of their type, within their bounds. Any thread (a pure check). */
static int check_declared(const struct function *function, const struct weft_plugin_function *own,
                          const json_t *args, struct problem *problem)
{
	for (const struct weft_plugin_argument *a = own->arguments; a->name != NULL; a++) {
		char field[96];
		snprintf(field, sizeof(field), "args.%s", a->name);
		const json_t *value = json_object_get(args, a->name);
		if (value == NULL) {
			if (a->required)
				return problem_set(problem, WEFT_EBADARGS, field, "%s needs '%s' (%s)", function->name,
				                   a->name, type_name(a->type));
			continue;
		}
		if (!type_matches(a->type, value))
			return problem_set(problem, WEFT_EBADARGS, field, "%s: '%s' must be %s", function->name,
			                   a->name, type_name(a->type));
		if (!(a->maximum > a->minimum) || bounded(a->type)[0] == '\0')
			continue;
		double measure = json_is_string(value)  ? (double)json_string_length(value)
		                 : json_is_array(value) ? (double)json_array_size(value)
		                                        : json_number_value(value);
		if (measure < a->minimum || measure > a->maximum)
			return problem_set(problem, WEFT_EBADARGS, field, "%s: '%s' must be %s from %g to %g %s",
			                   function->name, a->name, type_name(a->type), a->minimum, a->maximum,
			                   bounded(a->type));
	}
	return WEFT_OK;
}

static int plugin_check(const struct function *function, const json_t *args,
                        struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	const struct weft_plugin_function *own = function->implementation;
	if ((rv = check_declared(function, own, args, problem)) != WEFT_OK)
		return rv;
	if (own->check == NULL)
		return WEFT_OK;
	char message[400] = "";
	if (own->check(args, message, sizeof(message)) != 0) {
		message[sizeof(message) - 1] = '\0';
		return problem_set(problem, WEFT_EBADARGS, NULL, "%s: %s", function->name,
		                   message[0] != '\0' ? message : "bad arguments");
	}
	return WEFT_OK;
}

/* ---- loading ---- */

static bool name_chars(const char *name, size_t max, const char *extra)
{
	size_t length = strlen(name);
	if (length == 0 || length > max)
		return false;
	for (const char *c = name; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
		      strchr(extra, *c) != NULL))
			return false;
	return true;
}

/* The plugin's description is sound; message says what is not. */
static int validate(const char *path, const struct weft_plugin *plugin, char *message, size_t size)
{
	if (plugin->abi != WEFT_PLUGIN_ABI) {
		snprintf(message, size,
		         "plugin %s was built for plugin ABI %u, and this weftd loads ABI %d: rebuild it "
		         "against this weft's include/weft/plugin.h",
		         path, (unsigned)plugin->abi, WEFT_PLUGIN_ABI);
		return WEFT_EINVAL;
	}
	if (plugin->name == NULL || !name_chars(plugin->name, 32, "")) {
		snprintf(message, size, "plugin %s: its name must be 1 to 32 bytes of [a-z0-9_-]", path);
		return WEFT_EINVAL;
	}
	if (plugin->function_count == 0 || plugin->functions == NULL ||
	    plugin->function_count > FUNCTIONS_MAX) {
		snprintf(message, size, "plugin %s declares no functions (or more than %d)", path,
		         FUNCTIONS_MAX);
		return WEFT_EINVAL;
	}
	size_t prefix = strlen(plugin->name);
	for (size_t i = 0; i < plugin->function_count; i++) {
		const struct weft_plugin_function *function = &plugin->functions[i];
		const char *name = function->name != NULL ? function->name : "";
		if (!name_chars(name, 64, ".") || strncmp(name, plugin->name, prefix) != 0 ||
		    name[prefix] != '.' || name[prefix + 1] == '\0') {
			snprintf(message, size,
			         "plugin %s: function '%s' must be named \"%s.<name>\", at most 64 bytes of "
			         "[a-z0-9_.-]",
			         path, name, plugin->name);
			return WEFT_EINVAL;
		}
		for (size_t a = 0; function->arguments != NULL && function->arguments[a].name != NULL; a++) {
			const struct weft_plugin_argument *argument = &function->arguments[a];
			if (argument->type < WEFT_PLUGIN_ANY || argument->type > WEFT_PLUGIN_OBJECT ||
			    !name_chars(argument->name, 64, "")) {
				snprintf(message, size,
				         "plugin %s: function %s: argument %zu needs a name of [a-z0-9_-] and a "
				         "type of enum weft_plugin_type",
				         path, name, a);
				return WEFT_EINVAL;
			}
		}
		if (function->run == NULL || function->arguments == NULL ||
		    (function->executor != WEFT_PLUGIN_LOOP && function->executor != WEFT_PLUGIN_THREAD)) {
			snprintf(message, size,
			         "plugin %s: function %s needs run, arguments (ending with {NULL, NULL}) and "
			         "an executor (WEFT_PLUGIN_LOOP or WEFT_PLUGIN_THREAD)",
			         path, name);
			return WEFT_EINVAL;
		}
	}
	return WEFT_OK;
}

/* Opens path and checks who may have written it. */
static int open_checked(const char *path, int *fd_out, char *message, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(message, size, "cannot open plugin %s: %s", path, strerror(errno));
		return WEFT_EINVAL;
	}
	struct stat status;
	if (fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
		snprintf(message, size, "plugin %s is not a regular file", path);
		close(fd);
		return WEFT_EINVAL;
	}
	/* Root loads only what root alone could have written: anyone else who
	 * can change the file could run code as root. */
	if (geteuid() == 0 && status.st_uid != 0) {
		snprintf(message, size,
		         "plugin %s is owned by uid %u; a root weftd loads only plugins owned by root",
		         path, (unsigned)status.st_uid);
		close(fd);
		return WEFT_EPERM;
	}
	if (geteuid() == 0 && (status.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(message, size,
		         "plugin %s is writable by its group or others (mode %03o); a root weftd loads "
		         "only plugins that root alone can write (chmod go-w)",
		         path, (unsigned)(status.st_mode & 0777));
		close(fd);
		return WEFT_EPERM;
	}
	*fd_out = fd;
	return WEFT_OK;
}

int plugin_load(const char *path, char *message, size_t size)
{
	if (loaded_count == PLUGINS_MAX) {
		snprintf(message, size, "at most %d plugins", PLUGINS_MAX);
		return WEFT_EINVAL;
	}
	int fd, rv;
	if ((rv = open_checked(path, &fd, message, size)) != WEFT_OK)
		return rv;
	/* Loaded from the descriptor that was checked, not from the path again. */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	void *handle = dlopen(self, RTLD_NOW | RTLD_LOCAL);
	close(fd);
	if (handle == NULL) {
		snprintf(message, size, "cannot load plugin %s: %s", path, dlerror());
		return WEFT_EINVAL;
	}
	weft_plugin_entry_fn entry;
	*(void **)&entry = dlsym(handle, WEFT_PLUGIN_ENTRY);
	const struct weft_plugin *plugin = entry != NULL ? entry() : NULL;
	if (plugin == NULL) {
		snprintf(message, size, "plugin %s exports no %s function (or it returned NULL)", path,
		         WEFT_PLUGIN_ENTRY);
		dlclose(handle);
		return WEFT_EINVAL;
	}
	if ((rv = validate(path, plugin, message, size)) != WEFT_OK) {
		dlclose(handle);
		return rv;
	}
	struct loaded *made = &loaded[loaded_count++];
	made->count = plugin->function_count;
	made->functions = memory_zalloc(made->count * sizeof(*made->functions));
	made->arguments = memory_zalloc(made->count * sizeof(*made->arguments));
	made->descriptions = memory_zalloc(made->count * sizeof(*made->descriptions));
	for (size_t i = 0; i < made->count; i++) {
		const struct weft_plugin_function *own = &plugin->functions[i];
		size_t arguments = 0;
		while (own->arguments[arguments].name != NULL)
			arguments++;
		made->arguments[i] = memory_zalloc((arguments + 1) * sizeof(struct function_argument));
		made->descriptions[i] = memory_zalloc((arguments + 1) * sizeof(char *));
		for (size_t a = 0; a < arguments; a++) {
			/* As the built-ins say it: "integer (required) from 0 to 60: meaning". */
			const struct weft_plugin_argument *declared = &own->arguments[a];
			char text[512], bounds[96] = "";
			const char *type = type_name(declared->type);
			if (declared->maximum > declared->minimum && bounded(declared->type)[0] != '\0')
				snprintf(bounds, sizeof(bounds), " from %g to %g %s", declared->minimum,
				         declared->maximum, bounded(declared->type));
			snprintf(text, sizeof(text), "%s (%s)%s: %s", strchr(type, ' ') + 1,
			         declared->required ? "required" : "optional", bounds,
			         declared->description != NULL ? declared->description : "");
			made->descriptions[i][a] = memory_strdup(text);
			made->arguments[i][a].name = declared->name;
			made->arguments[i][a].description = made->descriptions[i][a];
		}
		struct function *function = &made->functions[i];
		function->name = own->name;
		function->executor = FUNCTION_TASK;
		function->summary = own->summary != NULL ? own->summary : "";
		function->arguments = made->arguments[i];
		function->check = plugin_check;
		function->start = plugin_start;
		function->stop = plugin_stop;
		function->implementation = own;
		if (functions_register(function) != WEFT_OK) {
			snprintf(message, size,
			         "plugin %s: function %s cannot be registered (the name is taken, or the "
			         "registry holds %d functions already)",
			         path, own->name, FUNCTIONS_MAX);
			return WEFT_EINVAL; /* weftd stops: what was registered stays until exit */
		}
	}
	return WEFT_OK;
}

static int is_plugin_name(const struct dirent *entry)
{
	size_t length = strlen(entry->d_name);
	return entry->d_name[0] != '.' && length > 3 && strcmp(entry->d_name + length - 3, ".so") == 0;
}

int plugin_load_dir(const char *directory, char *message, size_t size)
{
	int fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(message, size, "cannot open plugin directory %s: %s", directory, strerror(errno));
		return WEFT_EINVAL;
	}
	struct stat status;
	if (fstat(fd, &status) != 0) {
		snprintf(message, size, "cannot stat plugin directory %s: %s", directory, strerror(errno));
		close(fd);
		return WEFT_EINVAL;
	}
	/* Whoever may add or rename files here chooses what root loads. */
	if (geteuid() == 0 && (status.st_uid != 0 || (status.st_mode & (S_IWGRP | S_IWOTH)) != 0)) {
		snprintf(message, size,
		         "plugin directory %s is owned by uid %u with mode %03o; a root weftd loads only "
		         "from a directory owned by root that root alone can write (chmod go-w)",
		         directory, (unsigned)status.st_uid, (unsigned)(status.st_mode & 0777));
		close(fd);
		return WEFT_EPERM;
	}
	struct dirent **names;
	int count = scandirat(fd, ".", &names, is_plugin_name, alphasort);
	close(fd);
	if (count < 0) {
		snprintf(message, size, "cannot read plugin directory %s: %s", directory, strerror(errno));
		return WEFT_EINVAL;
	}
	int rv = WEFT_OK;
	for (int i = 0; i < count; i++) {
		char path[PATH_MAX];
		if (rv == WEFT_OK) {
			if ((size_t)snprintf(path, sizeof(path), "%s/%s", directory, names[i]->d_name) >=
			    sizeof(path)) {
				snprintf(message, size, "plugin path %s/%s is too long", directory, names[i]->d_name);
				rv = WEFT_EINVAL;
			} else {
				rv = plugin_load(path, message, size);
			}
		}
		free(names[i]);
	}
	free(names);
	return rv;
}

void plugin_fini(void)
{
	for (size_t p = 0; p < loaded_count; p++) {
		for (size_t i = 0; i < loaded[p].count; i++) {
			for (size_t a = 0; loaded[p].descriptions[i][a] != NULL; a++)
				free(loaded[p].descriptions[i][a]);
			free(loaded[p].descriptions[i]);
			free(loaded[p].arguments[i]);
		}
		free(loaded[p].descriptions);
		free(loaded[p].arguments);
		free(loaded[p].functions);
	}
	loaded_count = 0;
}
