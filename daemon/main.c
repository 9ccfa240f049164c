/* weftd's entry point: the command line, then daemon_run(). */
#include <stdio.h>

#include "daemon/daemon.h"
#include "daemon/options.h"

int main(int argc, char **argv)
{
	struct options options;
	char message[512];
	switch (options_parse(argc, argv, &options, message, sizeof(message))) {
	case OPTIONS_EXIT_OK:
		return 0;
	case OPTIONS_EXIT_USAGE:
		fprintf(stderr, "weftd: %s\n", message);
		return 2;
	case OPTIONS_RUN:
		break;
	}
	return daemon_run(&options);
}
