#!/usr/bin/env bash
# The dependency rule of daemon/ (README, "Layout"): a module includes only
# modules of its own layer or of layers below it, executors never include one
# another, and no modules include each other in a circle. Reads the
# `#include "daemon/..."` lines of every daemon/ file; prints each violation
# with the include that makes it and exits 1, else says what it checked.
set -euo pipefail
cd "$(dirname "$0")/.."

# Layers, lowest first. A folder not listed is an error: every module has a room.
layers=(base runtime core sched executors/inline executors/process executors/thread executors/task executors/group executors/io executors/plugin server app)
rank_of() { # folder -> rank, or empty
	local i
	for i in "${!layers[@]}"; do
		[ "${layers[$i]}" = "$1" ] && { echo "$i"; return 0; }
	done
	return 0
}
layer_of() { # daemon/a/b/c.h -> a/b (executors) or a
	local path=${1#daemon/}
	case $path in
	executors/*) echo "$path" | cut -d/ -f1-2 ;;
	*/*) echo "${path%%/*}" ;;
	*) echo "app" ;;
	esac
}
is_executor() { case $1 in executors/*) return 0 ;; esac; return 1; }

status=0
declare -A edges modules
files=$(find daemon -name '*.[ch]' | sort)
for file in $files; do
	from_layer=$(layer_of "$file")
	from_rank=$(rank_of "$from_layer")
	if [ -z "$from_rank" ]; then
		echo "check-layers: $file is in no layer (folders: ${layers[*]})"; status=1; continue
	fi
	from_module=${file%.[ch]}
	from_module=${from_module%_internal} # X_internal.h: X's own, shared by X's files
	modules[$from_module]=1
	while IFS= read -r include; do
		target=${include#\#include \"}; target=${target%\"*}
		to_module=${target%.[ch]}
		to_module=${to_module%_internal}
		[ "$to_module" = "$from_module" ] && continue
		to_layer=$(layer_of "$target")
		to_rank=$(rank_of "$to_layer")
		if [ -z "$to_rank" ]; then
			echo "check-layers: $file includes $target, which is in no layer"; status=1; continue
		fi
		if [ "$to_rank" -gt "$from_rank" ] && ! { is_executor "$from_layer" && is_executor "$to_layer"; }; then
			echo "check-layers: upward include: $file ($from_layer) includes $target ($to_layer)"
			status=1
		fi
		if is_executor "$from_layer" && is_executor "$to_layer" && [ "$from_layer" != "$to_layer" ]; then
			echo "check-layers: executors include each other: $file includes $target"
			status=1
		fi
		edges[$from_module]+=" $to_module"
	done < <(grep -E '^#include "daemon/' "$file" || true)
done

# Circles between modules (a module is a .c and its .h): depth-first search.
declare -A colour # empty: new, 1: on the path, 2: done
path=()
visit() {
	local module=$1 next
	colour[$module]=1
	path+=("$module")
	for next in ${edges[$module]:-}; do
		if [ "${colour[$next]:-}" = 1 ]; then
			local circle="" seen=false each
			for each in "${path[@]}"; do
				[ "$each" = "$next" ] && seen=true
				$seen && circle+="$each -> "
			done
			echo "check-layers: circle: ${circle}$next"
			status=1
		elif [ -z "${colour[$next]:-}" ]; then
			visit "$next"
		fi
	done
	unset 'path[${#path[@]}-1]'
	colour[$module]=2
}
for module in "${!modules[@]}"; do
	[ -z "${colour[$module]:-}" ] && visit "$module"
done
if [ $status -eq 0 ]; then
	echo "check-layers: ${#modules[@]} modules in ${#layers[@]} layers; no upward include, no circle"
fi
exit $status
