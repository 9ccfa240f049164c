# Turns RESULT lines into a markdown table of medians (POSIX awk: runs on mawk).
#
# Input: lines "RESULT bench=<name> impl=<name> key=value ...", fields in any
# order; other lines are ignored, and so are keys the table has no column for.
# Output: one row per (bench, impl), in the order they first appear, with the
# median of each field over the lines that carry it (the mean of the two middle
# values when their number is even), and a column "weft/peer" on each peer row:
#   weft's median rate / this peer's median rate          when both have a rate;
#   this peer's median secs / weft's median secs          otherwise (lower secs
#                                                         is better, so > 1 still
#                                                         means weft is faster).
# "weft" is the row with impl=weft (override with -v reference=NAME); rows whose
# impl starts with "weft" are weft's own variants and get no ratio.
# A row whose lines carry base=<impl> (weft's variants measured against
# another of weft's, such as a journal's --sync modes against --state-dir
# none) gets a column "vs base": its median rate / that row's median rate.

BEGIN {
	if (reference == "")
		reference = "weft"
	field_count = split("n secs rate p50_us p99_us rss_kb", fields, " ")
	split("n|secs|rate (/s)|p50 (µs)|p99 (µs)|rss (KiB)", headers, "|")
	bench_count = 0
}

$1 == "RESULT" {
	bench = ""
	impl = ""
	for (i = 2; i <= NF; i++) {
		eq = index($i, "=")
		if (eq == 0)
			continue
		key = substr($i, 1, eq - 1)
		value[key] = substr($i, eq + 1)
		seen_key[key] = 1
	}
	bench = ("bench" in seen_key) ? value["bench"] : ""
	impl = ("impl" in seen_key) ? value["impl"] : ""
	if (bench == "" || impl == "") {
		for (key in seen_key)
			delete seen_key[key]
		next
	}
	if (!(bench in bench_seen)) {
		bench_seen[bench] = 1
		bench_order[++bench_count] = bench
		impl_count[bench] = 0
	}
	row = bench SUBSEP impl
	if (("base" in seen_key) && value["base"] != "")
		base[row] = value["base"]
	if (!(row in runs)) {
		runs[row] = 0
		impl_order[bench, ++impl_count[bench]] = impl
	}
	runs[row]++
	for (f = 1; f <= field_count; f++) {
		key = fields[f]
		if ((key in seen_key) && value[key] ~ /^[0-9.eE+-]+$/)
			samples[row, key] = (row SUBSEP key) in samples ? samples[row, key] " " value[key] : value[key]
	}
	for (key in seen_key)
		delete seen_key[key]
}

function median(list,    count, i, j, item, sorted) {
	count = split(list, sorted, " ")
	for (i = 2; i <= count; i++) {
		item = sorted[i] + 0
		for (j = i - 1; j >= 1 && sorted[j] + 0 > item; j--)
			sorted[j + 1] = sorted[j]
		sorted[j + 1] = item
	}
	if (count % 2 == 1)
		return sorted[(count + 1) / 2] + 0
	return (sorted[count / 2] + sorted[count / 2 + 1]) / 2
}

# 1234567 -> 1,234,567
function grouped(number,    text, out) {
	text = sprintf("%.0f", number)
	out = ""
	while (length(text) > 3) {
		out = "," substr(text, length(text) - 2) out
		text = substr(text, 1, length(text) - 3)
	}
	return text out
}

function shown(row, key,    m) {
	if (!((row SUBSEP key) in samples))
		return ""
	m = median(samples[row, key])
	if (key == "secs")
		return sprintf("%.3f", m)
	if (key == "p50_us" || key == "p99_us")
		return sprintf("%.1f", m)
	return grouped(m)
}

function ratio(bench, impl,    weft_row, peer_row, a, b) {
	if (impl == reference || substr(impl, 1, 4) == "weft")
		return ""
	weft_row = bench SUBSEP reference
	peer_row = bench SUBSEP impl
	if (((weft_row SUBSEP "rate") in samples) && ((peer_row SUBSEP "rate") in samples)) {
		a = median(samples[weft_row, "rate"])
		b = median(samples[peer_row, "rate"])
		return b > 0 ? sprintf("%.2f", a / b) : ""
	}
	if (((weft_row SUBSEP "secs") in samples) && ((peer_row SUBSEP "secs") in samples)) {
		a = median(samples[weft_row, "secs"])
		b = median(samples[peer_row, "secs"])
		return a > 0 ? sprintf("%.2f", b / a) : ""
	}
	return ""
}

function versus_base(bench, impl,    row, base_row, a, b) {
	row = bench SUBSEP impl
	if (!(row in base))
		return ""
	base_row = bench SUBSEP base[row]
	if (!(((row SUBSEP "rate") in samples) && ((base_row SUBSEP "rate") in samples)))
		return ""
	a = median(samples[row, "rate"])
	b = median(samples[base_row, "rate"])
	return b > 0 ? sprintf("%.2f", a / b) : ""
}

END {
	printf "| bench | impl | runs |"
	for (f = 1; f <= field_count; f++)
		printf " %s |", headers[f]
	printf " weft/peer | vs base |\n"
	printf "|---|---|---:|"
	for (f = 1; f <= field_count; f++)
		printf "---:|"
	printf "---:|---:|\n"
	for (b = 1; b <= bench_count; b++) {
		bench = bench_order[b]
		for (i = 1; i <= impl_count[bench]; i++) {
			impl = impl_order[bench, i]
			row = bench SUBSEP impl
			printf "| %s | %s | %d |", bench, impl, runs[row]
			for (f = 1; f <= field_count; f++)
				printf " %s |", shown(row, fields[f])
			printf " %s | %s |\n", ratio(bench, impl), versus_base(bench, impl)
		}
	}
	if (bench_count == 0)
		print "| (no RESULT lines) | | | | | | | | | | |"
}
