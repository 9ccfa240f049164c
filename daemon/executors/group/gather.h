/*
 * gather and race: jobs that run child jobs concurrently (gather.c). Their
 * children are real jobs, listed as `children` in the parent's status.
 */
#ifndef GATHER_H
#define GATHER_H

struct function;

extern const struct function gather_function;
extern const struct function gather_race_function;

#endif
