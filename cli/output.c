/* The CLI's output and its mapping of errors to exit codes; see cli.h. */
#include <stdio.h>

#include "cli/cli.h"

int cli_exit_code(int error)
{
	switch (error) {
	case WEFT_OK:
		return CLI_EXIT_OK;
	case WEFT_ECONNECT:
	case WEFT_ECLOSED:
		return CLI_EXIT_CONNECT;
	case WEFT_ETIMEOUT:
		return CLI_EXIT_TIMEOUT;
	case WEFT_EINVAL:
		return CLI_EXIT_USAGE;
	default:
		return CLI_EXIT_ERROR;
	}
}

void cli_print_json(const json_t *value)
{
	/* JSON_ENCODE_ANY: a job's result may be a bare number or string; 16 digits print
	 * a double as it was written (0.3, not 0.29999999999999999). */
	if (json_dumpf(value, stdout, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16)) != 0)
		fprintf(stderr, "weft: out of memory printing JSON\n");
	fputc('\n', stdout);
}

int cli_report_error(const cli_globals *globals)
{
	const weft_error_info *error = weft_last_error();
	int code = error->code != WEFT_OK ? error->code : WEFT_EINTERNAL;
	const char *message = error->message[0] != '\0' ? error->message : weft_strerror(code);
	fprintf(stderr, "weft: %s\n", message);
	if (globals->json) {
		json_t *detail = json_pack("{s:s, s:s}", "code",
		                           error->wire_code[0] != '\0' ? error->wire_code
		                                                       : weft_error_code(code),
		                           "message", message);
		if (detail != NULL) {
			if (error->field[0] != '\0')
				json_object_set_new(detail, "field", json_string(error->field));
			if (error->index >= 0)
				json_object_set_new(detail, "index", json_integer(error->index));
			if (error->id != 0)
				json_object_set_new(detail, "id", json_integer((json_int_t)error->id));
			if (error->state[0] != '\0')
				json_object_set_new(detail, "state", json_string(error->state));
		}
		json_t *document = json_pack("{s:b, s:o}", "ok", 0, "error", detail);
		if (document != NULL)
			cli_print_json(document);
		json_decref(document);
	}
	return cli_exit_code(code);
}

int cli_connect(const cli_globals *globals, weft_client **client)
{
	if (weft_connect(globals->url, client) != 0)
		return cli_report_error(globals);
	return CLI_EXIT_OK;
}

json_t *cli_outcome_json(const weft_outcome *outcome)
{
	json_t *object = json_pack("{s:I, s:s}", "id", (json_int_t)outcome->id, "state",
	                           weft_state_name(outcome->state));
	if (object == NULL)
		return NULL;
	int rv = 0;
	if (outcome->result != NULL)
		rv = json_object_set(object, "result", outcome->result);
	else if (outcome->error_type != NULL) {
		json_t *error = json_pack("{s:s, s:s}", "type", outcome->error_type, "message",
		                          outcome->error_message);
		if (error != NULL && outcome->error_details != NULL)
			json_object_set(error, "details", outcome->error_details);
		rv = json_object_set_new(object, "error", error);
	}
	if (rv != 0) {
		json_decref(object);
		return NULL;
	}
	return object;
}

int cli_print_outcome(const cli_globals *globals, const weft_outcome *outcome)
{
	bool done = outcome->state == WEFT_STATE_DONE;
	if (globals->json) {
		json_t *object = cli_outcome_json(outcome);
		if (object == NULL) {
			fprintf(stderr, "weft: out of memory\n");
			return CLI_EXIT_ERROR;
		}
		cli_print_json(object);
		json_decref(object);
	} else if (done) {
		cli_print_json(outcome->result);
	}
	if (!done) {
		/* What the function adds (an exec job's output) goes first, the verdict last. */
		if (!globals->json && outcome->error_details != NULL)
			cli_print_json(outcome->error_details);
		fprintf(stderr, "weft: job %llu %s: %s: %s\n", (unsigned long long)outcome->id,
		        weft_state_name(outcome->state),
		        outcome->error_type != NULL ? outcome->error_type : "?",
		        outcome->error_message != NULL ? outcome->error_message : "");
	}
	return done ? CLI_EXIT_OK : CLI_EXIT_JOB_FAILED;
}

int cli_fetch_and_print(const cli_globals *globals, int (*fetch)(weft_client *, json_t **),
                        void (*print)(const json_t *))
{
	weft_client *client = NULL;
	int exit_code = cli_connect(globals, &client);
	if (exit_code != 0)
		return exit_code;
	json_t *value = NULL;
	if (fetch(client, &value) != 0)
		exit_code = cli_report_error(globals);
	else if (globals->json)
		cli_print_json(value);
	else
		print(value);
	json_decref(value);
	weft_close(client);
	return exit_code;
}
