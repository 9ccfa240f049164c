# Plugins (include/weft/plugin.h): the example, built by `make examples`,
# and the test's plugins, loaded by check_plugin.
$(BUILD)/examples/plugin/%.so: examples/plugin/%.c include/weft/plugin.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $< $(JANSSON_LIBS)
$(BUILD)/tests/plugins/%.so: tests/plugins/%.c include/weft/plugin.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $< $(JANSSON_LIBS)
EXAMPLE_PLUGINS := $(BUILD)/examples/plugin/example.so
.PHONY: examples
examples: $(EXAMPLE_PLUGINS)
ALL_TARGETS += $(EXAMPLE_PLUGINS)

$(BUILD)/tests/check_plugin: $(BUILD)/tests/check_plugin.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o | $(EXAMPLE_PLUGINS) $(BUILD)/tests/plugins/wrong_abi.so
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_plugin
