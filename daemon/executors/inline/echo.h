/*
 * echo, the inline function: its result is its argument. It runs on the
 * thread that received the submit and needs no executor of its own.
 */
#ifndef ECHO_H
#define ECHO_H

#include "daemon/core/functions.h"

extern const struct function echo_function;

#endif
