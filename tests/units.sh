# The systemd units verify clean: `systemd-analyze verify` prints nothing on
# stderr for each (it exits 0 on unknown keys and typos, so its silence is
# the test), the optional hardening drop-in included. Skipped visibly where
# systemd-analyze is missing. Run by `make check` with WEFTD and WEFT_SOURCE.
set -euo pipefail
if ! command -v systemd-analyze >/dev/null; then
	echo "SKIP: 3 systemd units verify clean: systemd-analyze is not installed"
	exit 0
fi
source_dir=${WEFT_SOURCE:?set WEFT_SOURCE to the source directory}
weftd=${WEFTD:?set WEFTD to the built weftd}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/runtime" "$work/hardened"
failed=0
rewrite() { sed -e "s|/usr/local/bin/weftd|$weftd|g" "$1"; }
verify() { # name, unit file, extra systemd-analyze options
	local name=$1 unit=$2; shift 2
	if ! XDG_RUNTIME_DIR="$work/runtime" systemd-analyze verify "$@" "$unit" \
		>"$work/out" 2>"$work/err" || [ -s "$work/err" ]; then
		echo "FAIL: $name does not verify clean:"; cat "$work/err"; failed=1
	else
		echo "PASS: $name verifies clean"
	fi
}
rewrite "$source_dir/systemd/weftd.service" >"$work/weftd.service"
verify "systemd/weftd.service" "$work/weftd.service"
rewrite "$source_dir/systemd/weftd-user.service" >"$work/weftd-user.service"
verify "systemd/weftd-user.service" "$work/weftd-user.service" --user
# The drop-in's lines inside the unit (verify reads no drop-ins of a file given by path).
grep -v '^#' "$source_dir/systemd/hardening.conf" | grep -v '^\[' >"$work/lines"
awk 'FNR == NR { lines = lines $0 "\n"; next } /^\[Install\]/ { printf "%s", lines } { print }' \
	"$work/lines" "$work/weftd.service" >"$work/hardened/weftd.service"
verify "systemd/weftd.service with hardening.conf" "$work/hardened/weftd.service"
exit $failed
