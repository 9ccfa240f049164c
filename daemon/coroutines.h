/*
 * Functions whose jobs run as stackful coroutine tasks of the runtime
 * (executor "task"): spawn_tree.
 */
#ifndef COROUTINES_H
#define COROUTINES_H

struct function;

extern const struct function spawn_tree_function;

#endif
