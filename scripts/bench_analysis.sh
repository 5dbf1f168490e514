#!/usr/bin/env bash
# Runs trace_request / log_analyzer and the tools people use today (cat as the floor, rg,
# DuckDB, jq, and hl when installed) on the same files, in one run, and prints a Markdown
# table of median wall times (of RUNS runs, page cache warm) with each tool's answer, so
# the answers can be compared too.
#
#   scripts/bench_analysis.sh [DIR] [SIZE]
#
# DIR (default /tmp/tracekit-bench/trace) is generated when missing: SIZE (default 1070M)
# of seed-format logs by examples/gen_logs.rs, ten component files plus errors/ and
# performance/, nothing rotated (as in the issue's measurements).
#
# Needs: cargo, rg, jq, python3 with the duckdb module (pip install duckdb; set PYTHON to
# a virtualenv's python). Environment: RUNS (default 3), SLOW_RUNS for jq (default RUNS),
# COMPONENT (default ranking), THRESHOLD (default 1000).
set -euo pipefail

DIR=${1:-/tmp/tracekit-bench/trace}
SIZE=${2:-1070M}
RUNS=${RUNS:-3}
SLOW_RUNS=${SLOW_RUNS:-$RUNS}
COMPONENT=${COMPONENT:-ranking}
THRESHOLD=${THRESHOLD:-1000}
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" \
    --bin trace_request --bin log_analyzer --example gen_logs
BIN=$ROOT/target/release
if [ ! -d "$DIR/logs" ]; then
    mkdir -p "$(dirname "$DIR")"
    "$BIN/examples/gen_logs" --dir "$DIR" --size "$SIZE" --max-file-size 4G > "$DIR.ids"
fi
LOGS=$DIR/logs
# A request from the middle of the set.
ID=${ID:-$(sed -n 2p "$DIR.ids" 2>/dev/null || true)}
if [ -z "$ID" ]; then
    ID=$(rg -m1 -o '"request_id":"[^"]+"' "$LOGS/serving/serving.log" | cut -d'"' -f4)
fi
LOGS_ERRORS=$LOGS/errors/errors.log
# The errors question's "since": the time of the error a third into the errors file.
SINCE=${SINCE:-$(sed -n "$(($(wc -l < "$LOGS_ERRORS") / 3 + 1))p" "$LOGS_ERRORS" | cut -d'"' -f4)}
COMPONENT_FILES=()
for d in "$LOGS"/*/; do
    c=$(basename "$d")
    case $c in errors | performance) ;; *) COMPONENT_FILES+=("$d$c.log") ;; esac
done
ALL_FILES=("$LOGS"/*/*.log)
CFILE=$LOGS/$COMPONENT/$COMPONENT.log
EFILE=$LOGS/errors/errors.log
PFILE=$LOGS/performance/performance.log
PY_COMPONENT_FILES=$(printf "'%s'," "${COMPONENT_FILES[@]}")

echo "# tracekit analysis benchmark" >&2
echo "dir $DIR ($(du -sh "$LOGS" | cut -f1)), request $ID, component $COMPONENT, since $SINCE" >&2
cat "${ALL_FILES[@]}" > /dev/null # warm the page cache

# median_time RUNS cmd... : prints the median wall time in seconds of RUNS runs.
median_time() {
    local runs=$1
    shift
    local times=()
    for _ in $(seq "$runs"); do
        local t0=$EPOCHREALTIME
        "$@" > /dev/null 2>&1 || true
        local t1=$EPOCHREALTIME
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    done
    printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}

# DuckDB: the query's median time inside one warm process (import and connect excluded,
# as with a DuckDB shell kept open), and its answer.
duck() {
    "$PYTHON" - "$1" "$RUNS" <<'EOF'
import sys, time, duckdb
q, runs = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
times, rows = [], None
for _ in range(runs):
    t = time.perf_counter()
    rows = con.execute(q).fetchall()
    times.append(time.perf_counter() - t)
times.sort()
print(f"{times[len(times) // 2]:.3f}|{rows if len(rows) <= 6 else f'{len(rows)} rows'}")
EOF
}

# DuckDB as a one-off command: a fresh process (Python start, import, connect) per query.
duck_process() {
    median_time "$RUNS" "$PYTHON" -c "import duckdb; duckdb.connect().execute(\"$1\").fetchall()"
}

row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }

echo "| question | tool | median s | answer |"
echo "| --- | --- | --- | --- |"

row "(reference)" "process start (/bin/true)" "$(median_time "$RUNS" /bin/true)" "in every time below but DuckDB's"

# 1. One request's lines, all files.
row "one request" "cat (floor, all files)" "$(median_time "$RUNS" cat "${ALL_FILES[@]}")" ""
row "one request" "rg -F (all files)" "$(median_time "$RUNS" rg -F "$ID" "$DIR/logs" "$DIR/archived")" \
    "$(rg -F -c "$ID" "${COMPONENT_FILES[@]}" | awk -F: '{s+=$2} END {print s " lines in component files"}')"
row "one request" "rg -F \| sort" "$(median_time "$RUNS" sh -c "rg -F --no-filename '$ID' '$DIR/logs' '$DIR/archived' | sort")" ""
row "one request" "**trace_request --json**" "$(median_time "$RUNS" "$BIN/trace_request" "$ID" --dir "$DIR" --json)" \
    "$("$BIN/trace_request" "$ID" --dir "$DIR" --json | jq '.entries | length') records"
IFS='|' read -r t a < <(duck "SELECT count(*) FROM read_ndjson_auto([$PY_COMPONENT_FILES], union_by_name=true) WHERE request_id = '$ID'")
row "one request" "DuckDB (component files)" "$t" "$a"
row "one request" "jq select (all files)" "$(median_time "$SLOW_RUNS" jq -c "select(.request_id==\"$ID\")" "${ALL_FILES[@]}")" ""

# 2. Errors of a component since T, by type.
row "errors since T by type" "**log_analyzer errors --json**" \
    "$(median_time "$RUNS" "$BIN/log_analyzer" errors --component "$COMPONENT" --since "$SINCE" --limit 100000 --json --dir "$DIR")" \
    "$("$BIN/log_analyzer" errors --component "$COMPONENT" --since "$SINCE" --limit 100000 --json --dir "$DIR" | jq -c '.by_type')"
IFS='|' read -r t a < <(duck "SELECT exception.type, count(*) FROM read_ndjson_auto('$EFILE') WHERE component = '$COMPONENT' AND timestamp >= '$SINCE' GROUP BY 1 ORDER BY 2 DESC")
row "errors since T by type" "DuckDB (errors file)" "$t" "$a"
row "errors since T by type" "DuckDB (errors file), fresh process" \
    "$(duck_process "SELECT exception.type, count(*) FROM read_ndjson_auto('$EFILE') WHERE component = '$COMPONENT' AND timestamp >= '$SINCE' GROUP BY 1")" ""
IFS='|' read -r t a < <(duck "SELECT exception.type, count(*) FROM read_ndjson_auto([$PY_COMPONENT_FILES], union_by_name=true) WHERE component = '$COMPONENT' AND level IN ('ERROR', 'CRITICAL') AND timestamp >= '$SINCE' GROUP BY 1 ORDER BY 2 DESC")
row "errors since T by type" "DuckDB (component files)" "$t" "$a"
row "errors since T by type" "jq (errors file)" \
    "$(median_time "$RUNS" sh -c "jq -r 'select(.component==\"$COMPONENT\" and .timestamp >= \"$SINCE\") | .exception.type' '$EFILE' | sort | uniq -c")" ""

# 3. p50/p95/p99 of a component's timings.
row "p50/p95/p99" "cat (floor, performance file)" "$(median_time "$RUNS" cat "$PFILE")" ""
row "p50/p95/p99" "**log_analyzer performance --json**" \
    "$(median_time "$RUNS" "$BIN/log_analyzer" performance "$COMPONENT" --json --dir "$DIR")" \
    "$("$BIN/log_analyzer" performance "$COMPONENT" --json --dir "$DIR" | jq -c '.duration_ms | [.count, .p50, .p95, .p99]')"
IFS='|' read -r t a < <(duck "SELECT count(data.duration_ms), quantile_cont(data.duration_ms, [0.5, 0.95, 0.99]) FROM read_ndjson_auto('$CFILE')")
row "p50/p95/p99" "DuckDB quantile_cont (component file)" "$t" "$a"
row "p50/p95/p99" "DuckDB quantile_cont (component file), fresh process" \
    "$(duck_process "SELECT quantile_cont(data.duration_ms, [0.5, 0.95, 0.99]) FROM read_ndjson_auto('$CFILE')")" ""
IFS='|' read -r t a < <(duck "SELECT count(*), quantile_cont(data.duration_ms, [0.5, 0.95, 0.99]) FROM read_ndjson_auto('$PFILE') WHERE component = '$COMPONENT'")
row "p50/p95/p99" "DuckDB quantile_cont (performance file)" "$t" "$a"
row "p50/p95/p99" "jq + sort (component file)" \
    "$(median_time "$SLOW_RUNS" sh -c "jq '.data.duration_ms // empty' '$CFILE' | sort -g | awk '{a[NR]=\$1} END {print a[int(NR*0.5)], a[int(NR*0.95)], a[int(NR*0.99)]}'")" ""

# 4. Slow operations over a threshold.
row "slow > ${THRESHOLD} ms" "rg -F prefilter only" "$(median_time "$RUNS" rg -F '"duration_ms":' "$CFILE")" ""
row "slow > ${THRESHOLD} ms" "**log_analyzer slow --json**" \
    "$(median_time "$RUNS" "$BIN/log_analyzer" slow "$COMPONENT" --threshold "$THRESHOLD" --limit 100000 --json --dir "$DIR")" \
    "$("$BIN/log_analyzer" slow "$COMPONENT" --threshold "$THRESHOLD" --limit 100000 --json --dir "$DIR" | jq '.total') operations"
IFS='|' read -r t a < <(duck "SELECT count(*) FROM (SELECT timestamp, data.duration_ms AS d FROM read_ndjson_auto('$CFILE') WHERE data.duration_ms > $THRESHOLD ORDER BY d DESC)")
row "slow > ${THRESHOLD} ms" "DuckDB (component file)" "$t" "$a"
row "slow > ${THRESHOLD} ms" "DuckDB (component file), fresh process" \
    "$(duck_process "SELECT timestamp, data.duration_ms AS d FROM read_ndjson_auto('$CFILE') WHERE data.duration_ms > $THRESHOLD ORDER BY d DESC")" ""
row "slow > ${THRESHOLD} ms" "jq select (component file)" \
    "$(median_time "$SLOW_RUNS" jq -c "select(.data.duration_ms > $THRESHOLD)" "$CFILE")" \
    "$(jq -c "select(.data.duration_ms > $THRESHOLD)" "$CFILE" | wc -l) lines"

if command -v hl > /dev/null; then
    row "slow > ${THRESHOLD} ms" "hl --query" \
        "$(median_time "$RUNS" hl -P --raw --query ".data.duration_ms > $THRESHOLD" "$CFILE")" ""
    row "errors since T by type" "hl (errors file)" \
        "$(median_time "$RUNS" hl -P --raw --query ".component = $COMPONENT" --since "$SINCE" "$EFILE")" ""
fi

# 5. The summary (no target; every line of every component file is counted).
row "summary" "**log_analyzer summary --json**" \
    "$(median_time "$RUNS" "$BIN/log_analyzer" summary --json --dir "$DIR")" \
    "$("$BIN/log_analyzer" summary --json --dir "$DIR" | jq '.records') records"
