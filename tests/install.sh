# make install into a staging directory gives a working library with only the
# public headers, and make uninstall takes away exactly what install put there.
# Run by `make check-install` (part of `make check`) with BUILD and the source dir.
set -euo pipefail
source_dir=$1 build=$2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# A strict umask, as root's often is: the units must still be readable by every user.
(umask 077 && make -s -C "$source_dir" install BUILD="$build" DESTDIR="$stage" PREFIX=/usr >/dev/null)
for private in task.h executor.h jobs.h; do
	if [ -e "$stage/usr/include/weft/$private" ]; then
		echo "FAIL: install put the daemon's $private among the public headers"; exit 1
	fi
done
cat > "$stage/program.c" <<'PROGRAM'
#include <stdio.h>
#include <weft/weft.h>
int main(void)
{
	weft_client *client = NULL;
	/* Nothing listens there: the library must say so, not crash. */
	int rv = weft_connect("ipc:///nonexistent/weft.sock", &client);
	printf("%s %d %s\n", WEFT_VERSION_STRING, WEFT_VERSION_NUMBER >= WEFT_VERSION_AT(0, 1, 0),
	       weft_error_code(rv));
	return rv == WEFT_OK;
}
PROGRAM
cc -o "$stage/program" "$stage/program.c" -I"$stage/usr/include" $(pkg-config --cflags jansson) \
	-L"$stage/usr/lib" -lweft
out=$(LD_LIBRARY_PATH="$stage/usr/lib" "$stage/program")
case $out in
"0.1.0 1 cannot_connect" | "0.1.0 1 permission_denied") ;;
*) echo "FAIL: a program built against the installed library printed '$out'"; exit 1 ;;
esac
rm -f "$stage/program" "$stage/program.c"
for unit in lib/systemd/system/weftd.service lib/systemd/user/weftd.service lib/sysusers.d/weft.conf \
	lib/tmpfiles.d/weft.conf share/doc/weft/hardening.conf; do
	if [ ! -s "$stage/usr/$unit" ]; then
		echo "FAIL: make install did not install $unit"; exit 1
	fi
done
if ! grep -q '^ExecStart=/usr/bin/weftd ' "$stage/usr/lib/systemd/system/weftd.service" ||
	! grep -q 'file:/usr/share/doc/weft/README.md' "$stage/usr/lib/systemd/user/weftd.service"; then
	echo "FAIL: make install did not point the units at PREFIX's weftd and README"; exit 1
fi
for unit in system user; do
	file="$stage/usr/lib/systemd/$unit/weftd.service"
	if ! grep -q '^ExecStart=/usr/bin/weftd ' "$file" || grep -q '/usr/local' "$file"; then
		echo "FAIL: the installed $unit unit still names a path outside PREFIX=/usr:"
		grep -n '/usr/' "$file"; exit 1
	fi
	if [ "$(stat -c %a "$file")" != 644 ]; then
		echo "FAIL: the installed $unit unit has mode $(stat -c %a "$file"), not 644"; exit 1
	fi
done
make -s -C "$source_dir" uninstall BUILD="$build" DESTDIR="$stage" PREFIX=/usr >/dev/null
left=$(find "$stage" -type f -o -type l)
if [ -n "$left" ]; then
	echo "FAIL: make uninstall left:"; echo "$left"; exit 1
fi
echo "PASS: install gives a working libweft with its public headers; uninstall removes it all"
