/*
 * Functions whose jobs run as tasks of the runtime (executor "task"): sleep
 * (stackless) and spawn_tree (stackful).
 */
#ifndef COROUTINES_H
#define COROUTINES_H

struct function;

extern const struct function coroutines_sleep_function;
extern const struct function coroutines_await_function;
extern const struct function coroutines_spawn_tree_function;

#endif
