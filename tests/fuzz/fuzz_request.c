/*
 * libFuzzer target for the request decoder: any bytes from a socket must give
 * either a decoded request or a problem with a code and a message, never a
 * crash, a leak or undefined behaviour. `make fuzz` builds and runs it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon/base/problem.h"
#include "daemon/server/request.h"
#include "tests/stand_ins.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	stand_ins_register();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct request request;
	struct problem problem;
	problem_init(&problem);
	int rv = request_decode(data, size, &request, &problem);
	if (rv == WEFT_OK) {
		request_clear(&request);
	} else {
		/* Every refusal can be put on the wire. */
		json_t *reply = problem_to_reply(&problem);
		if (reply == NULL || problem.message[0] == '\0')
			abort();
		json_decref(reply);
	}
	return 0;
}
