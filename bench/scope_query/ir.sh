#!/usr/bin/env bash
# Instructions per call of each scope_query bench case (callgrind), independent of machine load:
# Ir of N=3000 calls minus Ir of N=1000 calls, over 2000. Run from the repository root:
#   bench/scope_query/ir.sh
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --offline --quiet
bin=target/release/scope-query-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ir() {
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$bin" ir "$1" "$2" >/dev/null 2>&1
    callgrind_annotate "$work/out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
for case in eval_only cached_query_and_eval parse_and_eval_granted parse_and_missing_refused scopes_list_of_10_parse_and_check nothing; do
    low=$(ir "$case" 1000)
    high=$(ir "$case" 3000)
    echo "$case: $(( (high - low) / 2000 )) instructions per call"
done
