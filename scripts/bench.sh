#!/usr/bin/env bash
# Skiff's cost benchmarks (test/bench) as a markdown table against the budgets:
#
#   scripts/bench.sh            (what `make bench` runs)
#
# Unless AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_DYNAMODB are set, it runs
# itself under scripts/with-standins.sh (the S3 and DynamoDB stand-ins on
# free loopback ports, stopped whatever happens), runs
#
#   go test -run '^$' -bench "$BENCH_FILTER" -benchtime="${BENCH_N}x" ./test/bench/
#
# and prints a markdown table of every
# measurement with its budget and where the requests or bytes go, for the
# aws backend (S3 + DynamoDB stand-ins: AWS requests, S3 body bytes) and the
# local one (store operations and bytes on the storage ports). Request
# counts are deterministic, so one iteration (BENCH_N=1, the default)
# measures them; a whole run takes about a minute and a half on 2 cores,
# most of it the four 1 GiB pushes. The raw `go test` output and the table
# are kept in $BENCH_OUT.
#
# Env:
#   BENCH_N          iterations per benchmark (default 1)
#   BENCH_FILTER     -bench regexp (default .)
#   BENCH_OUT        directory for the raw go test output and the table
#                    (default results/bench)
#   BENCH_STRICT=1   exit 1 when a measurement misses its budget
#                    (default: report it, exit 0)
#   AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_DYNAMODB both set: use those
#                    endpoints, start no stand-in.
# The exit status is go test's (then BENCH_STRICT's).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

n="${BENCH_N:-1}"
filter="${BENCH_FILTER:-.}"
out_dir="${BENCH_OUT:-$root/results/bench}"
# Work in a private directory; copy to $out_dir at the end (results/ is
# shared with other runs, which may clean it meanwhile).
work="$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench.XXXXXX")"
raw="$work/bench.txt"
table="$work/bench.md"

log() { printf 'bench.sh: %s\n' "$*" >&2; }

# --- stand-ins ---------------------------------------------------------------

# Without endpoints, run again under scripts/with-standins.sh, which starts
# the stand-ins on free ports, exports their endpoints (and
# SKIFF_REQUIRE_STANDINS=1: an aws benchmark that cannot reach them fails)
# and stops them afterwards.
if [[ -z "${AWS_ENDPOINT_URL_S3:-}" || -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]]; then
	rm -rf "$work"
	exec "$root/scripts/with-standins.sh" "$0" "$@"
fi
log "stand-ins: S3 $AWS_ENDPOINT_URL_S3, DynamoDB $AWS_ENDPOINT_URL_DYNAMODB"
export SKIFF_REQUIRE_STANDINS=1
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- benchmarks --------------------------------------------------------------

log "go test -run '^\$' -bench '$filter' -benchtime=${n}x ./test/bench/"
set +e
go test -run '^$' -bench "$filter" -benchtime="${n}x" -timeout 20m ./test/bench/ 2>&1 | tee "$raw"
rc=${PIPESTATUS[0]}
set -e

# --- table -------------------------------------------------------------------

# Rows: benchmark | kind | what is measured | budget op | budget value |
# metric prefix | metric (kind metric: the name of the figure shown). kind: req
# (requests per operation), metric (one reported figure), amp (write
# amplification), heap (peak heap). Request budgets are stated in AWS
# requests; the local backend's store operations are judged against the same
# figure for reference. The "cold-" rows are the same PUT with the index
# policy cache cold: an instance's first manifest PUT, then the first after
# every policy.DefaultTTL (10 s) without one.
rows='BlobPushSmall|req|small blob push as clients do it: POST + PUT ?digest= (1 KiB; the 4th request is the content record that keeps one copy per digest)|<=|4
BlobPushSingleRequest|req|small blob push in one request: POST ?digest= (1 KiB)||
BlobHead|req|HEAD before a push (blob absent: 404)||
BlobPushChunked64MiB|req|chunked push, 64 MiB in 4 MiB chunks (POST, 16 PATCH, PUT ?digest=)||
ManifestPut10Layers|req|image manifest PUT, 10 layers (policy cache warm)|<=|5
ManifestPut10Layers|req|image manifest PUT, 10 layers (policy cache cold: first PUT per instance and per 10 s)|<=|5|cold-
ManifestPut100Layers|req|image manifest PUT, 100 layers (policy cache warm)|<=|5
ManifestPut100Layers|req|image manifest PUT, 100 layers (policy cache cold: first PUT per instance and per 10 s)|<=|5|cold-
ManifestPutFirst100Layers|req|first image manifest PUT into a repository, 100 layers (records the repository; policy cache warm)|<=|5
IndexPut20Children|req|index PUT, 20 children (policy cache warm)||
IndexPut20Children|req|index PUT, 20 children (policy cache cold)|||cold-
TagList1000|req|tag list, 1,000 tags (default paging, every page)||
ManifestPutAbsentFlood|req|refused manifest PUT, 9,999 absent layers (first 100 errors listed)|<=|3
BlobPushChunked64MiB|amp|write amplification: chunked 64 MiB, 4 MiB chunks|<=|2.0
BlobPushMonolithic8MiB|amp|write amplification: monolithic 8 MiB (POST + PUT ?digest=)|<=|1.0
PeakHeapChunked1GiB|heap|peak heap: 1 GiB pushed in 4 MiB chunks|<|64
PeakHeapStream1GiB|heap|peak heap: 1 GiB as one streaming PATCH (crane, skopeo)|<|64
StorageAmplification|metric|storage amplification: one 64 MiB layer pushed to 20 repositories by streaming PATCH (stored / distinct bytes)|<=|1.0||amp-streaming
StorageAmplification|metric|storage amplification: the same by chunked PATCH (4 MiB chunks)|<=|1.0||amp-chunked
StorageAmplification|metric|storage amplification: the same by monolithic PUT|<=|1.0||amp-monolithic
GCPass|metric|GC pass over 400 manifests, 8 repositories: requests per manifest scanned||||req/manifest
GCPass|metric|GC pass: requests per blob link scanned||||req/link
GCPass|req|GC pass: every request (48 unnamed links and their blobs deleted)||'

awk -v rows="$rows" -v strict="${BENCH_STRICT:-0}" '
function human(ns) {
	if (ns >= 1e9) return sprintf("%.2f s", ns / 1e9)
	if (ns >= 1e6) return sprintf("%.1f ms", ns / 1e6)
	return sprintf("%.0f µs", ns / 1e3)
}
# bytes: "96 MiB + 851 B", "32 MiB", "620 B" (exact, readable).
function bytes(x,   w, r) {
	x = int(x + 0.5)
	if (x < 1048576) return sprintf("%d B", x)
	w = int(x / 1048576); r = x - w * 1048576
	return (r == 0) ? sprintf("%d MiB", w) : sprintf("%d MiB + %d B", w, r)
}
function num(x) { return (x == int(x)) ? sprintf("%d", x) : sprintf("%.2f", x) }
function ok(v, op, lim) {
	if (op == "<=") return v <= lim
	if (op == "<") return v < lim
	return 1
}
# Benchmark lines: name iterations value unit value unit ...
/^Benchmark/ && / ns\/op/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	sub(/^Benchmark/, "", name)
	seen[name] = 1
	for (i = 3; i < NF; i += 2) {
		m[name, $(i + 1)] = $i
		units[name] = units[name] " " $(i + 1)
	}
}
END {
	print "| measurement | backend | measured | budget | verdict | time/op | where it goes |"
	print "|---|---|---:|---|---|---:|---|"
	nr = split(rows, R, "\n")
	over = 0
	for (r = 1; r <= nr; r++) {
		split(R[r], f, "|")
		bench = f[1]; kind = f[2]; what = f[3]; op = f[4]; lim = f[5]; vr = f[6]; metric = f[7]
		for (bi = 1; bi <= 2; bi++) {
			be = (bi == 1) ? "aws" : "local"
			key = bench "/" be
			budget = (op == "") ? "—" : op " " lim ((kind == "req") ? " req" : (kind == "heap") ? " MiB" : "")
			if (!(key in seen)) {
				notrun++
				printf "| %s | %s | not run | %s | **NOT RUN** | | see the go test output above |\n", what, be, budget
				continue
			}
			t = human(m[key, "ns/op"])
			detail = ""
			if (kind == "req") {
				unit = vr ((be == "aws") ? "aws-req/op" : "store-ops/op")
				pre = vr ((be == "aws") ? "aws:" : "store:")
				if (!((key, unit) in m)) {
					notrun++
					printf "| %s | %s | not measured | %s | **NOT RUN** | | no %s metric |\n", what, be, budget, unit
					continue
				}
				v = m[key, unit]
				shown = num(v) ((be == "aws") ? " AWS req" : " store ops")
				# Per-operation breakdown, largest first.
				k = split(units[key], U, " ")
				cnt = 0
				for (j = 1; j <= k; j++) {
					u = U[j]
					if (index(u, pre) == 1 && u ~ /\/op$/) {
						nm = substr(u, length(pre) + 1); sub(/\/op$/, "", nm)
						cnt++; ON[cnt] = nm; OV[cnt] = m[key, u]
					}
				}
				for (a = 1; a <= cnt; a++) for (c = a + 1; c <= cnt; c++)
					if (OV[c] > OV[a] || (OV[c] == OV[a] && ON[c] < ON[a])) { tn = ON[a]; ON[a] = ON[c]; ON[c] = tn; tv = OV[a]; OV[a] = OV[c]; OV[c] = tv }
				for (a = 1; a <= cnt; a++) detail = detail (a > 1 ? ", " : "") ON[a] " " num(OV[a])
				if (key == "TagList1000/" be) detail = detail "; " num(m[key, "pages"]) " page(s)"
				if (key ~ /^ManifestPut/) detail = detail "; manifest " num(m[key, "manifest-bytes"]) " B"
			} else if (kind == "metric") {
				if (!((key, metric) in m)) {
					notrun++
					printf "| %s | %s | not measured | %s | **NOT RUN** | | no %s metric |\n", what, be, budget, metric
					continue
				}
				v = m[key, metric]
				shown = sprintf("%.4f", v)
				detail = metric
				if (bench == "GCPass") detail = sprintf("%s; %d manifests, %d links kept, %d deleted per pass", metric, m[key, "manifests"], m[key, "links-kept"], m[key, "links-deleted/op"])
			} else if (kind == "amp") {
				pfx = (be == "aws") ? "s3-bytes" : "store-bytes"
				s = m[key, pfx ((be == "aws") ? "-sent/op" : "-written/op")]
				rcv = m[key, pfx ((be == "aws") ? "-recv/op" : "-read/op")]
				p = m[key, "pushed-bytes/op"]
				v = (s + rcv) / p
				shown = sprintf("%.6f", v) ((be == "aws") ? " S3 B/B" : " store B/B")
				put = m[key, "port-bytes:Blob.Put/op"] + 0
				part = m[key, "port-bytes:Blob.UploadPart/op"] + 0
				opn = m[key, "port-bytes:Blob.Open/op"] + 0
				detail = sprintf("%s %s, %s %s, for %s pushed; by port call: Put %s, UploadPart %s, Open %s", \
					(be == "aws") ? "S3 sent" : "written", bytes(s), (be == "aws") ? "received" : "read", bytes(rcv), bytes(p), \
					bytes(put), bytes(part), bytes(opn))
				if (be == "aws") detail = detail sprintf("; S3 bodies beyond those (request/response XML): %s", bytes(s + rcv - put - part - opn))
				# Judged on the byte counts, not on the rounded ratio.
				passed = ok(s + rcv, op, lim * p)
			} else {
				v = m[key, "peak-heap-MiB"]
				shown = sprintf("%.1f MiB", v)
				detail = sprintf("heap objects sampled every 2 ms (%d samples), client included; peak live heap (after a GC) %.1f MiB, peak GC heap goal %.1f MiB, heap before the push %.1f MiB; GOGC %d", \
					m[key, "heap-samples"], m[key, "peak-live-heap-MiB"], m[key, "peak-heap-goal-MiB"], m[key, "base-heap-MiB"], m[key, "gogc"])
			}
			if (kind != "amp") passed = ok(v, op, lim)
			verdict = (op == "") ? "—" : (passed ? "ok" : "**OVER**")
			if (op != "" && !passed) { over++; overs[over] = what " (" be "): " shown "; " detail }
			if (vr != "") t = "(untimed)"
			printf "| %s | %s | %s | %s | %s | %s | %s |\n", what, be, shown, budget, verdict, t, detail
		}
	}
	print ""
	if (notrun > 0) print notrun " measurement(s) NOT RUN (skipped, failed or filtered out)."
	if (over == 0) {
		print "Every measurement " ((notrun > 0) ? "that ran " : "") "is within its budget."
	} else {
		print over " measurement(s) over budget:"
		print ""
		for (o = 1; o <= over; o++) print "- " overs[o]
	}
	if (strict == 1 && over > 0) exit 3
}' "$raw" | tee "$table"
table_rc=${PIPESTATUS[0]}
if mkdir -p "$out_dir" && cp "$raw" "$table" "$out_dir/"; then
	log "raw output and table saved in $out_dir (bench.txt, bench.md)"
fi
if [[ $rc -ne 0 ]]; then
	log "go test failed (exit $rc)"
	exit "$rc"
fi
if [[ $table_rc -eq 3 ]]; then
	log "BENCH_STRICT=1: over budget"
	exit 1
fi
exit "$table_rc"
