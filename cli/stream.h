/*
 * Copying an exec job's output here as it is made (the `output` op), for
 * `weft run` and `weft logs`. Main thread.
 */
#ifndef CLI_STREAM_H
#define CLI_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/weft.h"

/* Not a libweft code (those are >= 0). */
#define CLI_STREAM_WRITE_FAILED (-2)

/* How a copy went. */
typedef struct cli_stream_state {
	uint64_t shown;  /* bytes written here */
	uint64_t lost;   /* bytes weftd no longer kept when they were asked for */
	bool eof;        /* the job's output ended */
	bool started;    /* the job's process had started by the last reply */
} cli_stream_state;

/*
 * Copies job id's output from offset (< 0: that many bytes before the end)
 * to this process's stdout (stdout bytes, and with WEFT_STREAM_BOTH stderr
 * bytes to stderr), byte for byte, as it arrives. follow: until the output
 * ends (waiting for a job that has not started yet); otherwise until what
 * exists now is copied. tail_lines > 0: begins with the last tail_lines lines
 * of what exists. Says on stderr when bytes were lost. Returns WEFT_OK or the
 * libweft error (the last error is set); CLI_STREAM_WRITE_FAILED when writing
 * here failed (said on stderr).
 */
int cli_stream_copy(weft_client *client, uint64_t id, weft_stream stream, int64_t offset,
                    bool follow, long long tail_lines, cli_stream_state *state);

#endif
