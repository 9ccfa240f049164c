/*
 * Functions whose jobs run as tasks of the runtime (executor "task"): sleep
 * (stackless) and spawn_tree (stackful).
 */
#ifndef COROUTINES_H
#define COROUTINES_H

struct function;

extern const struct function sleep_function;
extern const struct function await_function;
extern const struct function count_function;
extern const struct function spawn_tree_function;

#endif
