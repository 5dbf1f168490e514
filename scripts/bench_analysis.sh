#!/usr/bin/env bash
# Runs trace_request / log_analyzer and the tools people use today (cat as the floor, rg,
# DuckDB, jq, lnav, a plain Python json loop, and hl when installed) on the same files, in
# one run, and prints a Markdown table of median wall times (of RUNS runs, page cache warm)
# with each tool's answer. The answers of DuckDB, lnav and the Python loop are checked
# against ours ("same", or "DIFFERENT" with both); the script exits 1 when any differs.
#
#   scripts/bench_analysis.sh [DIR] [SIZE]
#
# DIR (default /tmp/tracekit-bench/trace) is generated when missing: SIZE (default 1070M)
# of seed-format logs by examples/gen_logs.rs, ten component files plus errors/ and
# performance/, nothing rotated (as in the issue's measurements).
#
# Needs: cargo, rg, jq, python3 with the duckdb module (pip install duckdb; set PYTHON to
# a virtualenv's python), lnav (apt-get install lnav; its rows say "not installed" when it
# is missing). lnav reads the files with tracekit's log format, trace/lnav/tracekit.json,
# installed into a temporary HOME: nothing outside the run is changed. hl (pamburus/hl)
# runs when on PATH. Environment: RUNS (default 3), SLOW_RUNS for jq, lnav and the Python
# loop (default RUNS), COMPONENT (default ranking), THRESHOLD (default 1000).
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
echo "load average before: $(uptime | sed 's/.*load average: //')" >&2
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

# timed RUNS cmd... : "median|stdout of the last run, on one line" (for the slow tools,
# whose one run gives both the time and the answer).
timed() {
    local runs=$1
    shift
    local times=() out=""
    for _ in $(seq "$runs"); do
        local t0=$EPOCHREALTIME
        out=$("$@" 2> /dev/null || true)
        local t1=$EPOCHREALTIME
        times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    done
    local median
    median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}')
    printf '%s|%s\n' "$median" "$(printf '%s' "$out" | tr '\n' ' ' | sed 's/ *$//')"
}

# An answer in one common form: words, `name=count` pairs, and numbers to 9 significant
# digits, space-separated.
norm() {
    printf '%s\n' "$1" | tr -c 'A-Za-z0-9_.=\n-' ' ' | tr ' ' '\n' | awk 'NF {
        if ($0 ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) printf "%.9g\n", $0; else print }' |
        paste -sd' ' -
}

# check OURS THEIRS: "same" when the answers agree, else "DIFFERENT", with both.
DIFFERENT=0
check() {
    local a b
    a=$(norm "$1")
    b=$(norm "$2")
    if [ -n "$a" ] && [ "$a" = "$b" ]; then
        echo "same ($b)"
    else
        DIFFERENT=1
        echo "**DIFFERENT**: ${b:-no answer}; ours $a"
    fi
}

# DuckDB: the query's median time inside one warm process (import and connect excluded,
# as with a DuckDB shell kept open), and its answer: rows space-separated, a row's values
# joined by `=` (`KeyError=30`), lists flattened.
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
def flat(v):
    return " ".join(map(str, v)) if isinstance(v, list) else str(v)
def row(r):
    return "=".join(map(flat, r)) if len(r) == 2 and isinstance(r[0], str) else " ".join(map(flat, r))
print(f"{times[len(times) // 2]:.3f}|{' '.join(map(row, rows))}")
EOF
}

# DuckDB as a one-off command: a fresh process (Python start, import, connect) per query.
duck_process() {
    median_time "$RUNS" "$PYTHON" -c "import duckdb; duckdb.connect().execute(\"$1\").fetchall()"
}

# The plain Python json loop (scripts/json_loop.py).
pyloop() {
    timed "$SLOW_RUNS" "$PYTHON" "$ROOT/scripts/json_loop.py" "$@"
}

# lnav, headless (-n), SQL over the files read with tracekit's log format.
LNAV_HOME=""
if command -v lnav > /dev/null; then
    LNAV_HOME=$(mktemp -d)
    trap 'rm -rf "$LNAV_HOME"' EXIT
    if ! HOME=$LNAV_HOME lnav -i "$ROOT/trace/lnav/tracekit.json" > /dev/null 2>&1; then
        echo "lnav: could not install trace/lnav/tracekit.json; lnav rows left out" >&2
        LNAV_HOME=""
    fi
fi
# lnav_sql SQL FILE... : the result rows without the header, one line, `a=b` for 2 columns.
lnav_sql() {
    local q=$1
    shift
    HOME=$LNAV_HOME lnav -n -c ";$q" "$@" | tail -n +2 | awk 'NF == 2 && $1 !~ /^[0-9.]+$/ {print $1 "=" $2; next} {print}'
}
# lnav_pct FILE: lnav selects the sorted durations; awk takes count and p50/p95/p99
# (linear interpolation; SQLite has no percentile function).
lnav_pct() {
    HOME=$LNAV_HOME lnav -n -c ';SELECT "data/duration_ms" FROM tracekit_log WHERE "data/duration_ms" IS NOT NULL ORDER BY 1' "$1" |
        tail -n +2 | awk '{a[NR-1]=$1} END {
            n = NR; printf "%d", n; split("0.5 0.95 0.99", ps, " ")
            for (k = 1; k <= 3; k++) { x = (n - 1) * ps[k]; i = int(x)
                v = (i + 1 >= n) ? a[i] : a[i] + (a[i + 1] - a[i]) * (x - i); printf " %.17g", v }
            print "" }'
}
lnav_row() { # question, label, timed-result
    if [ -z "$LNAV_HOME" ]; then
        row "$1" "$2" "-" "not run: lnav is not installed (apt-get install lnav)"
    else
        IFS='|' read -r t a <<< "$3"
        row "$1" "$2" "$t" "$(check "$4" "$a")"
    fi
}
lnav_timed() { if [ -n "$LNAV_HOME" ]; then timed "$SLOW_RUNS" "$@"; fi; }

row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }

echo "| question | tool | median s | answer |"
echo "| --- | --- | --- | --- |"

row "(reference)" "process start (/bin/true)" "$(median_time "$RUNS" /bin/true)" "in every time below but DuckDB's"

# 1. One request's lines, all files.
row "one request" "cat (floor, all files)" "$(median_time "$RUNS" cat "${ALL_FILES[@]}")" ""
row "one request" "rg -F (all files)" "$(median_time "$RUNS" rg -F "$ID" "$DIR/logs" "$DIR/archived")" \
    "$(rg -F -c "$ID" "${COMPONENT_FILES[@]}" | awk -F: '{s+=$2} END {print s " lines in component files"}')"
row "one request" "rg -F \| sort" "$(median_time "$RUNS" sh -c "rg -F --no-filename '$ID' '$DIR/logs' '$DIR/archived' | sort")" ""
OURS1=$("$BIN/trace_request" "$ID" --dir "$DIR" --json | jq '.entries | length')
row "one request" "**trace_request --json**" "$(median_time "$RUNS" "$BIN/trace_request" "$ID" --dir "$DIR" --json)" \
    "$OURS1 records"
IFS='|' read -r t a < <(duck "SELECT count(*) FROM read_ndjson_auto([$PY_COMPONENT_FILES], union_by_name=true) WHERE request_id = '$ID'")
row "one request" "DuckDB (component files)" "$t" "$(check "$OURS1" "$a")"
row "one request" "jq select (all files)" "$(median_time "$SLOW_RUNS" jq -c "select(.request_id==\"$ID\")" "${ALL_FILES[@]}")" ""
lnav_row "one request" "lnav SQL (component files)" \
    "$(lnav_timed lnav_sql "SELECT count(*) FROM tracekit_log WHERE request_id = '$ID'" "${COMPONENT_FILES[@]}")" "$OURS1"
IFS='|' read -r t a < <(pyloop request "$ID" "${COMPONENT_FILES[@]}")
row "one request" "Python json loop (component files)" "$t" "$(check "$OURS1" "$a")"

# 2. Errors of a component since T, by type (answers by type name).
OURS2=$("$BIN/log_analyzer" errors --component "$COMPONENT" --since "$SINCE" --limit 100000 --json --dir "$DIR" |
    jq -r '.by_type | sort_by(.[0]) | map("\(.[0])=\(.[1])") | join(" ")')
row "errors since T by type" "**log_analyzer errors --json**" \
    "$(median_time "$RUNS" "$BIN/log_analyzer" errors --component "$COMPONENT" --since "$SINCE" --limit 100000 --json --dir "$DIR")" \
    "$OURS2"
IFS='|' read -r t a < <(duck "SELECT exception.type, count(*) FROM read_ndjson_auto('$EFILE') WHERE component = '$COMPONENT' AND timestamp >= '$SINCE' GROUP BY 1 ORDER BY 1")
row "errors since T by type" "DuckDB (errors file)" "$t" "$(check "$OURS2" "$a")"
row "errors since T by type" "DuckDB (errors file), fresh process" \
    "$(duck_process "SELECT exception.type, count(*) FROM read_ndjson_auto('$EFILE') WHERE component = '$COMPONENT' AND timestamp >= '$SINCE' GROUP BY 1")" ""
IFS='|' read -r t a < <(duck "SELECT exception.type, count(*) FROM read_ndjson_auto([$PY_COMPONENT_FILES], union_by_name=true) WHERE component = '$COMPONENT' AND level IN ('ERROR', 'CRITICAL') AND timestamp >= '$SINCE' GROUP BY 1 ORDER BY 1")
row "errors since T by type" "DuckDB (component files)" "$t" "$(check "$OURS2" "$a")"
row "errors since T by type" "jq (errors file)" \
    "$(median_time "$RUNS" sh -c "jq -r 'select(.component==\"$COMPONENT\" and .timestamp >= \"$SINCE\") | .exception.type' '$EFILE' | sort | uniq -c")" ""
lnav_row "errors since T by type" "lnav SQL (errors file)" \
    "$(lnav_timed lnav_sql "SELECT \"exception/type\", count(*) FROM tracekit_log WHERE component = '$COMPONENT' AND json_extract(log_raw_text, '\$.timestamp') >= '$SINCE' GROUP BY 1 ORDER BY 1" "$EFILE")" "$OURS2"
IFS='|' read -r t a < <(pyloop errors "$COMPONENT" "$SINCE" "$EFILE")
row "errors since T by type" "Python json loop (errors file)" "$t" "$(check "$OURS2" "$a")"

# 3. p50/p95/p99 of a component's timings.
OURS3=$("$BIN/log_analyzer" performance "$COMPONENT" --json --dir "$DIR" | jq -r '.duration_ms | "\(.count) \(.p50) \(.p95) \(.p99)"')
row "p50/p95/p99" "cat (floor, performance file)" "$(median_time "$RUNS" cat "$PFILE")" ""
row "p50/p95/p99" "cat (floor, component file)" "$(median_time "$RUNS" cat "$CFILE")" ""
row "p50/p95/p99" "**log_analyzer performance --json**" \
    "$(median_time "$RUNS" "$BIN/log_analyzer" performance "$COMPONENT" --json --dir "$DIR")" "$(norm "$OURS3")"
IFS='|' read -r t a < <(duck "SELECT count(data.duration_ms), quantile_cont(data.duration_ms, [0.5, 0.95, 0.99]) FROM read_ndjson_auto('$CFILE')")
row "p50/p95/p99" "DuckDB quantile_cont (component file)" "$t" "$(check "$OURS3" "$a")"
row "p50/p95/p99" "DuckDB quantile_cont (component file), fresh process" \
    "$(duck_process "SELECT quantile_cont(data.duration_ms, [0.5, 0.95, 0.99]) FROM read_ndjson_auto('$CFILE')")" ""
IFS='|' read -r t a < <(duck "SELECT count(*), quantile_cont(data.duration_ms, [0.5, 0.95, 0.99]) FROM read_ndjson_auto('$PFILE') WHERE component = '$COMPONENT'")
row "p50/p95/p99" "DuckDB quantile_cont (performance file)" "$t" "$(check "$OURS3" "$a")"
row "p50/p95/p99" "jq + sort (component file)" \
    "$(median_time "$SLOW_RUNS" sh -c "jq '.data.duration_ms // empty' '$CFILE' | sort -g | awk '{a[NR]=\$1} END {print a[int(NR*0.5)], a[int(NR*0.95)], a[int(NR*0.99)]}'")" ""
lnav_row "p50/p95/p99" "lnav SQL sorted + awk (component file)" "$(lnav_timed lnav_pct "$CFILE")" "$OURS3"
IFS='|' read -r t a < <(pyloop perf "$CFILE")
row "p50/p95/p99" "Python json loop (component file)" "$t" "$(check "$OURS3" "$a")"

# 4. Slow operations over a threshold.
OURS4=$("$BIN/log_analyzer" slow "$COMPONENT" --threshold "$THRESHOLD" --limit 100000 --json --dir "$DIR" | jq '.total')
row "slow > ${THRESHOLD} ms" "rg -F prefilter only" "$(median_time "$RUNS" rg -F '"duration_ms":' "$CFILE")" ""
row "slow > ${THRESHOLD} ms" "**log_analyzer slow --json**" \
    "$(median_time "$RUNS" "$BIN/log_analyzer" slow "$COMPONENT" --threshold "$THRESHOLD" --limit 100000 --json --dir "$DIR")" \
    "$OURS4 operations"
IFS='|' read -r t a < <(duck "SELECT count(*) FROM (SELECT timestamp, data.duration_ms AS d FROM read_ndjson_auto('$CFILE') WHERE data.duration_ms > $THRESHOLD ORDER BY d DESC)")
row "slow > ${THRESHOLD} ms" "DuckDB (component file)" "$t" "$(check "$OURS4" "$a")"
row "slow > ${THRESHOLD} ms" "DuckDB (component file), fresh process" \
    "$(duck_process "SELECT timestamp, data.duration_ms AS d FROM read_ndjson_auto('$CFILE') WHERE data.duration_ms > $THRESHOLD ORDER BY d DESC")" ""
row "slow > ${THRESHOLD} ms" "jq select (component file)" \
    "$(median_time "$SLOW_RUNS" jq -c "select(.data.duration_ms > $THRESHOLD)" "$CFILE")" \
    "$(jq -c "select(.data.duration_ms > $THRESHOLD)" "$CFILE" | wc -l) lines"
lnav_row "slow > ${THRESHOLD} ms" "lnav SQL (component file)" \
    "$(lnav_timed lnav_sql "SELECT count(*) FROM tracekit_log WHERE \"data/duration_ms\" > $THRESHOLD" "$CFILE")" "$OURS4"
IFS='|' read -r t a < <(pyloop slow "$THRESHOLD" "$CFILE")
row "slow > ${THRESHOLD} ms" "Python json loop (component file)" "$t" "$(check "$OURS4" "$a")"

if command -v hl > /dev/null; then
    row "slow > ${THRESHOLD} ms" "hl --query" \
        "$(median_time "$RUNS" hl -P --raw --query ".data.duration_ms > $THRESHOLD" "$CFILE")" ""
    row "errors since T by type" "hl (errors file)" \
        "$(median_time "$RUNS" hl -P --raw --query ".component = $COMPONENT" --since "$SINCE" "$EFILE")" ""
else
    row "(all)" "hl" "-" "not run: hl (pamburus/hl) is not installed, and cannot be here: it is not on crates.io under that name, nor on PyPI, npm or Debian"
fi

# 5. The summary (no target; every line of every component file is counted).
row "summary" "**log_analyzer summary --json**" \
    "$(median_time "$RUNS" "$BIN/log_analyzer" summary --json --dir "$DIR")" \
    "$("$BIN/log_analyzer" summary --json --dir "$DIR" | jq '.records') records"

echo "load average after: $(uptime | sed 's/.*load average: //')" >&2
if [ "$DIFFERENT" = 1 ]; then
    echo "some tool's answer differs from ours (rows marked DIFFERENT)" >&2
    exit 1
fi
