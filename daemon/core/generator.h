/*
 * generator: weft_yield_item (include/weft/jobs.h), the producer's side of a
 * job's items (items.h). It finds the job the caller works for: a task's
 * weft_task_local (the task executor attaches the job), or on a pool thread
 * the job generator_enter named.
 */
#ifndef GENERATOR_H
#define GENERATOR_H

struct job;
struct jobs;

/* The table whose jobs yield. Main thread, before any job runs. */
void generator_init(struct jobs *jobs);

/* A pool thread starts (job: borrowed, outlives the call) or ends
 * (NULL) running a call for job. The calling thread. */
void generator_enter(struct job *job);

#endif
