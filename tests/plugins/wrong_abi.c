/* A plugin built for another plugin ABI: weftd must refuse it (check_plugin). */
#include <weft/plugin.h>

static const struct weft_plugin_argument none[] = {{NULL, NULL}};

static int run(struct weft_plugin_call *call)
{
	(void)call;
	return WEFT_OK;
}

static const struct weft_plugin_function functions[] = {
	{.name = "wrong.nothing", .executor = WEFT_PLUGIN_LOOP, .arguments = none, .run = run},
};

static const struct weft_plugin plugin = {
	.abi = 42, /* no weftd's */
	.name = "wrong",
	.functions = functions,
	.function_count = 1,
};

const struct weft_plugin *weft_plugin_entry(void);
const struct weft_plugin *weft_plugin_entry(void)
{
	return &plugin;
}
