"""The plain Python json loop of scripts/bench_analysis.sh: the stdlib json module, files
read line by line, for the four questions. Prints the answer in the script's common form.

    json_loop.py request ID FILE...           count of records of request ID
    json_loop.py errors COMPONENT SINCE FILE...  error types and counts, by type name
    json_loop.py perf FILE...                 count p50 p95 p99 of data.duration_ms
    json_loop.py slow THRESHOLD FILE...       count of data.duration_ms > THRESHOLD
"""

import json
import sys


def records(paths):
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if isinstance(r, dict):
                    yield r


def duration(r):
    d = r.get("data")
    if isinstance(d, dict):
        v = d.get("duration_ms")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def pct(v, p):
    """Linear interpolation between closest ranks (ours, DuckDB's quantile_cont)."""
    x = (len(v) - 1) * p
    i = int(x)
    if i + 1 >= len(v):
        return v[i]
    return v[i] + (v[i + 1] - v[i]) * (x - i)


def main():
    q, args = sys.argv[1], sys.argv[2:]
    if q == "request":
        rid = args[0]
        print(sum(1 for r in records(args[1:]) if r.get("request_id") == rid))
    elif q == "errors":
        comp, since = args[0], args[1]
        by = {}
        for r in records(args[2:]):
            if r.get("component") == comp and r.get("timestamp", "") >= since:
                t = (r.get("exception") or {}).get("type")
                by[t] = by.get(t, 0) + 1
        print(" ".join(f"{t}={n}" for t, n in sorted(by.items(), key=lambda x: str(x[0]))))
    elif q == "perf":
        v = sorted(d for d in map(duration, records(args)) if d is not None)
        print(len(v), *(repr(pct(v, p)) for p in (0.5, 0.95, 0.99)))
    elif q == "slow":
        thr = float(args[0])
        print(sum(1 for r in records(args[1:]) if (duration(r) or 0.0) > thr))
    else:
        sys.exit(f"unknown question {q}")


if __name__ == "__main__":
    main()
