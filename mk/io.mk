# The IO built-ins (daemon/executors/io/) end to end, against servers the
# tests start themselves (tests/http_server.c: libevent's evhttp), with the
# fixture they share (tests/servers.c).
$(BUILD)/tests/check_http: $(BUILD)/tests/check_http.o $(BUILD)/tests/http_server.o \
		$(BUILD)/tests/fixture.o $(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o \
		$(BUILD)/tests/servers.o $(BUILD)/tests/dns_server.o \
		| $(BUILD)/tests/helpers/wire_send
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(HTTP_SERVER_LIBS) $(JANSSON_LIBS) $(NNG_LIBS) \
		$(CHECK_LIBS)
$(BUILD)/tests/http_server.o: ALL_CFLAGS += $(CHECK_CFLAGS)
# The tests' server speaks TLS too (libevent's OpenSSL bufferevents).
HTTP_SERVER_LIBS = $(EVENT_LIBS) $(shell pkg-config --libs libevent_openssl openssl 2>/dev/null)
CHECK_PROGS += $(BUILD)/tests/check_http

# redis.command against a real redis-server (a SKIP without one), and as a
# throwaway user through wire_send; names through the tests' DNS server.
$(BUILD)/tests/check_redis: $(BUILD)/tests/check_redis.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o $(BUILD)/tests/servers.o \
		$(BUILD)/tests/dns_server.o | $(BUILD)/tests/helpers/wire_send
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) \
		$(shell pkg-config --libs hiredis 2>/dev/null) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_redis

# sql.query against a real PostgreSQL made by the test (a SKIP without it).
$(BUILD)/tests/check_sql.o: ALL_CFLAGS += $(shell pkg-config --cflags libpq 2>/dev/null)
$(BUILD)/tests/check_sql: $(BUILD)/tests/check_sql.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o $(BUILD)/tests/servers.o \
		$(BUILD)/tests/dns_server.o | $(BUILD)/tests/helpers/wire_send
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) \
		$(shell pkg-config --libs libpq 2>/dev/null) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_sql

# Issue 15's benchmark: concurrent http.get against the Python peers.
$(BUILD)/bench/io/http_bench: $(BUILD)/bench/io/http_bench.o $(BUILD)/tests/http_server.o \
		$(BUILD)/tests/fixture.o $(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(HTTP_SERVER_LIBS) $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
$(BUILD)/bench/io/http_bench.o: ALL_CFLAGS += $(CHECK_CFLAGS)
BENCH_PROGS += $(BUILD)/bench/io/http_bench

# sql.query's MySQL/MariaDB half against a real mariadbd (a SKIP without it).
$(BUILD)/tests/check_mysql.o: ALL_CFLAGS += $(shell pkg-config --cflags libmariadb 2>/dev/null)
$(BUILD)/tests/check_mysql: $(BUILD)/tests/check_mysql.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o $(BUILD)/tests/servers.o \
		$(BUILD)/tests/dns_server.o | $(BUILD)/tests/helpers/wire_send
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) \
		$(shell pkg-config --libs libmariadb 2>/dev/null) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_mysql

# Issue 15's Redis benchmark: redis.command jobs against redis.asyncio and redis-benchmark.
$(BUILD)/bench/io/redis_bench: $(BUILD)/bench/io/redis_bench.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) \
		$(shell pkg-config --libs hiredis 2>/dev/null) $(CHECK_LIBS)
$(BUILD)/bench/io/redis_bench.o: ALL_CFLAGS += $(CHECK_CFLAGS)
BENCH_PROGS += $(BUILD)/bench/io/redis_bench

# Issue 15's SQL benchmark: sql.query jobs against asyncpg and aiomysql.
$(BUILD)/bench/io/sql_bench.o: ALL_CFLAGS += $(CHECK_CFLAGS) $(shell pkg-config --cflags libpq libmariadb 2>/dev/null)
$(BUILD)/bench/io/sql_bench: $(BUILD)/bench/io/sql_bench.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) \
		$(shell pkg-config --libs libpq libmariadb 2>/dev/null) $(CHECK_LIBS)
BENCH_PROGS += $(BUILD)/bench/io/sql_bench

# The shared connection pools and name lookups (pool.c, resolve.c), called directly.
# Against the tests' DNS server (tests/dns_server.c, a thread of the test).
$(BUILD)/tests/check_pool: $(BUILD)/tests/check_pool.o $(BUILD)/tests/dns_server.o $(BUILD)/libweftd.a \
		$(BUILD)/libweftrt.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS) $(CHECK_LIBS)
$(BUILD)/tests/dns_server.o: ALL_CFLAGS += $(CHECK_CFLAGS)
CHECK_PROGS += $(BUILD)/tests/check_pool
