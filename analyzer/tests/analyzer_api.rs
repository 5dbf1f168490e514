//! The `LogAnalyzer` API against records written through the real writer, every answer
//! checked against the test's own model of what was written.

mod analyzer_common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::OnceLock;

use analyzer_common::{build, close, files_with, percentile, Dataset, Spec, STAGES};
use tracekit_analyzer::{ErrorFilter, ErrorSource, FileRole, LogAnalyzer, SkipReason, Timestamp};

fn data() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(build)
}

fn analyzer() -> LogAnalyzer {
    LogAnalyzer::new(data().root()).threads(2)
}

fn key(ts: &str, component: &str, message: &str) -> (String, String, String) {
    (ts.to_owned(), component.to_owned(), message.to_owned())
}

/// The records of a request in the model: its own, and the spans of its trace that name
/// no request.
fn model_trace(id: &str) -> Vec<&'static Spec> {
    let specs = &data().specs;
    let traces: Vec<&String> = specs
        .iter()
        .filter(|s| s.request_id.as_deref() == Some(id))
        .filter_map(|s| s.trace_id.as_ref())
        .collect();
    let mut v: Vec<&Spec> = specs
        .iter()
        .filter(|s| {
            s.request_id.as_deref() == Some(id)
                || (s.request_id.is_none()
                    && s.trace_id.as_ref().is_some_and(|t| traces.contains(&t)))
        })
        .collect();
    v.sort_by_key(|s| s.micros);
    v
}

#[test]
fn the_writer_made_archives_daily_files_and_copies() {
    let files = analyzer().files();
    let has = |role, archived, compressed| {
        files
            .iter()
            .any(|f| f.role == role && f.archived == archived && f.compressed == compressed)
    };
    assert!(has(FileRole::Main, false, false));
    assert!(
        has(FileRole::Main, true, true),
        "gzip archives of main files"
    );
    assert!(has(FileRole::Daily, false, false));
    assert!(
        has(FileRole::Errors, true, true),
        "gzip archives of errors/"
    );
    assert!(has(FileRole::Performance, false, false));
}

#[test]
fn trace_request_returns_every_record_once_in_time_order() {
    for id in [
        "req-0000", "req-0007", "req-0013", "req-0020", "req-0101", "req-0239",
    ] {
        let trace = analyzer().trace_request(id);
        let want = model_trace(id);
        assert!(trace.found());
        let mut got: Vec<_> = trace
            .entries
            .iter()
            .map(|e| key(&e.timestamp.to_string(), &e.component, &e.message))
            .collect();
        let mut expected: Vec<_> = want
            .iter()
            .map(|s| key(&s.timestamp(), &s.component, &s.message))
            .collect();
        // Time order first; records of one instant may come in any file order.
        let times: Vec<_> = got.iter().map(|k| k.0.clone()).collect();
        let mut sorted = times.clone();
        sorted.sort();
        assert_eq!(times, sorted, "{id}: time order");
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{id}");

        // Header.
        let users: Vec<String> = want.iter().filter_map(|s| s.user_id.clone()).collect();
        assert_eq!(trace.user_ids, vec![users[0].clone()]);
        let traces: Vec<String> = want.iter().filter_map(|s| s.trace_id.clone()).collect();
        assert_eq!(trace.trace_ids.len(), usize::from(!traces.is_empty()));
        let first = want.iter().map(|s| s.micros).min().unwrap();
        assert!(trace.start.unwrap().micros() <= first);

        // Stages: the pipeline in order, then the others in order of appearance.
        let names: Vec<&str> = trace.stages.iter().map(|s| s.component.as_str()).collect();
        let mut expected_names: Vec<&str> = STAGES
            .iter()
            .copied()
            .filter(|s| want.iter().any(|w| w.component == *s))
            .collect();
        expected_names.push("app");
        if want.iter().any(|w| w.component == "zeta") {
            expected_names.push("zeta");
        }
        if want.iter().any(|w| w.component == "serving") {
            assert!(names.contains(&"serving"));
        }
        assert_eq!(names, expected_names, "{id}");
        for stage in &trace.stages {
            let of: Vec<&&Spec> = want
                .iter()
                .filter(|w| w.component == stage.component)
                .collect();
            assert_eq!(stage.records, of.len(), "{id} {}", stage.component);
            // A stage runs from its earliest start (timing records began duration_ms before
            // their timestamp; span starts are never earlier than the stage's first record
            // here) to its latest end.
            let start = of
                .iter()
                .map(|s| s.micros - s.duration_ms.map_or(0, |d| (d * 1000.0).round() as i64))
                .min()
                .unwrap();
            let end = of.iter().map(|s| s.micros).max().unwrap();
            assert_eq!((stage.start.micros(), stage.end.micros()), (start, end));
            assert!(close(stage.duration_ms, (end - start) as f64 / 1000.0));
            assert_eq!(stage.errors, of.iter().filter(|w| w.is_error()).count());
            let timings: Vec<(String, f64)> = of
                .iter()
                .filter_map(|w| Some((w.function.clone()?, w.duration_ms?)))
                .collect();
            assert_eq!(stage.timings, timings);
            // Data flow: each numeric field's last value.
            let mut flow: Vec<(String, f64)> = Vec::new();
            for w in &of {
                for (k, v) in &w.data {
                    match flow.iter_mut().find(|(fk, _)| fk == k) {
                        Some(slot) => slot.1 = *v,
                        None => flow.push((k.clone(), *v)),
                    }
                }
            }
            assert_eq!(stage.data_flow, flow, "{id} {}", stage.component);
        }
        // Errors, with their tracebacks.
        let errors: Vec<_> = want.iter().filter(|w| w.is_error()).collect();
        assert_eq!(trace.errors.len(), errors.len());
        for e in &trace.errors {
            if e.level == "ERROR" {
                let tb = e.exception.as_ref().unwrap().traceback.as_deref().unwrap();
                assert!(tb.contains("most recent call last"));
            }
        }
    }
}

#[test]
fn span_tree_of_a_traced_request() {
    let trace = analyzer().trace_request("req-0020");
    let rows: Vec<(usize, &str)> = trace
        .spans
        .iter()
        .map(|s| (s.depth, s.name.as_str()))
        .collect();
    let mut want = vec![(0, "handle_request")];
    want.extend(STAGES.iter().map(|s| (1, *s)));
    assert_eq!(rows, want);
    assert!(trace.spans[1..]
        .iter()
        .all(|s| s.parent_span_id.as_deref() == Some(trace.spans[0].span_id.as_str())));
    // The request runs from the earliest start (a timing record started duration_ms before
    // its timestamp; span starts here are never earlier than the first record) to the
    // latest end (the root span's end, t0 + 60 ms).
    let want = model_trace("req-0020");
    let start = want
        .iter()
        .map(|s| s.micros - s.duration_ms.map_or(0, |d| (d * 1000.0).round() as i64))
        .min()
        .unwrap();
    let end = want.iter().map(|s| s.micros).max().unwrap();
    assert_eq!(trace.start.unwrap().micros(), start);
    assert_eq!(trace.end.unwrap().micros(), end);
    assert!(close(trace.duration_ms, (end - start) as f64 / 1000.0));
    assert!(close(trace.spans[0].duration_ms, 60.0));
    // Untraced requests have no span tree.
    assert!(analyzer().trace_request("req-0001").spans.is_empty());
}

#[test]
fn an_unknown_request_is_not_found() {
    let trace = analyzer().trace_request("req-9999");
    assert!(!trace.found());
    assert!(trace.scan.files > 0);
    // A prefix of real ids is not a match either.
    assert!(!analyzer().trace_request("req-00").found());
}

fn model_errors(f: &ErrorFilter) -> Vec<&'static Spec> {
    let mut v: Vec<&Spec> = data()
        .specs
        .iter()
        .filter(|s| s.is_error())
        .filter(|s| f.component.as_ref().is_none_or(|c| &s.component == c))
        .filter(|s| {
            f.error_type
                .as_ref()
                .is_none_or(|t| s.error_type.as_ref() == Some(t))
        })
        .filter(|s| {
            f.request_id
                .as_ref()
                .is_none_or(|r| s.request_id.as_ref() == Some(r))
        })
        .filter(|s| f.since.is_none_or(|t| s.micros >= t.micros()))
        .filter(|s| f.until.is_none_or(|t| s.micros <= t.micros()))
        .collect();
    v.sort_by_key(|s| s.micros);
    v
}

fn check_errors(f: &ErrorFilter) {
    let report = analyzer().find_errors(f).unwrap();
    let want = model_errors(f);
    assert_eq!(report.total as usize, want.len(), "{f:?}");
    assert_eq!(report.source, ErrorSource::ErrorsIndex);
    let shown = f.limit.unwrap_or(usize::MAX).min(want.len());
    let want = &want[want.len() - shown..];
    let got: Vec<_> = report
        .errors
        .iter()
        .map(|e| key(&e.timestamp.to_string(), &e.component, &e.message))
        .collect();
    let expected: Vec<_> = want
        .iter()
        .map(|s| key(&s.timestamp(), &s.component, &s.message))
        .collect();
    assert_eq!(got, expected, "{f:?}");
    let mut by_type = BTreeMap::new();
    for s in model_errors(f) {
        *by_type
            .entry(s.error_type.clone().unwrap_or("-".into()))
            .or_insert(0u64) += 1;
    }
    let got: BTreeMap<String, u64> = report.by_type.into_iter().collect();
    assert_eq!(got, by_type, "{f:?}");
}

#[test]
fn find_errors_by_every_filter() {
    let specs = &data().specs;
    let errors: Vec<&Spec> = specs.iter().filter(|s| s.is_error()).collect();
    assert!(errors.len() > 20);
    let mid = errors[errors.len() / 2].micros;
    let at = |m: i64| Some(Timestamp::from_micros(m));
    for f in [
        ErrorFilter::default(),
        ErrorFilter {
            component: Some("ranking".into()),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            component: Some("serving".into()),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            error_type: Some("ValueError".into()),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            request_id: Some("req-0026".into()),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            request_id: Some("req-0001".into()),
            ..ErrorFilter::default()
        },
        // since and until are inclusive: the boundary record is in.
        ErrorFilter {
            since: at(mid),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            until: at(mid),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            since: at(mid),
            until: at(mid),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            component: Some("candidate".into()),
            error_type: Some("KeyError".into()),
            since: at(errors[3].micros),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            limit: Some(3),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            limit: Some(0),
            ..ErrorFilter::default()
        },
        ErrorFilter {
            component: Some("nothing_here".into()),
            ..ErrorFilter::default()
        },
    ] {
        check_errors(&f);
    }
    assert!(analyzer()
        .find_errors(&ErrorFilter {
            component: Some("../etc".into()),
            ..ErrorFilter::default()
        })
        .is_err());
}

#[test]
fn find_errors_falls_back_to_component_files_without_errors_dir() {
    let d = build();
    for sub in ["logs/errors", "archived/errors"] {
        std::fs::remove_dir_all(d.root().join(sub)).unwrap();
    }
    let a = LogAnalyzer::new(d.root());
    let report = a.find_errors(&ErrorFilter::default()).unwrap();
    assert_eq!(report.source, ErrorSource::ComponentFiles);
    let want = d.specs.iter().filter(|s| s.is_error()).count();
    assert_eq!(report.total as usize, want);
    let typed = a
        .find_errors(&ErrorFilter {
            error_type: Some("TimeoutError".into()),
            ..ErrorFilter::default()
        })
        .unwrap();
    let want = d
        .specs
        .iter()
        .filter(|s| s.error_type.as_deref() == Some("TimeoutError"))
        .count();
    assert_eq!(typed.total as usize, want);
}

fn check_stats(got: &tracekit_analyzer::DurationStats, values: &[f64]) {
    assert_eq!(got.count as usize, values.len());
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    assert!(close(got.mean, mean));
    assert_eq!(
        got.min,
        values.iter().cloned().fold(f64::INFINITY, f64::min)
    );
    assert_eq!(
        got.max,
        values.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
    );
    for (g, p) in [
        (got.p50, 0.5),
        (got.p90, 0.9),
        (got.p95, 0.95),
        (got.p99, 0.99),
    ] {
        assert!(
            close(g, percentile(values, p)),
            "p{p}: {g} vs {}",
            percentile(values, p)
        );
    }
}

#[test]
fn performance_statistics_are_exact_and_count_each_record_once() {
    for since in [
        None,
        Some(Timestamp::from_micros(data().now_micros - 3_600_000_000)),
    ] {
        for stage in STAGES {
            let report = analyzer().analyze_performance(stage, since).unwrap();
            let of: Vec<&Spec> = data()
                .specs
                .iter()
                .filter(|s| s.component == stage)
                .filter(|s| since.is_none_or(|t| s.micros >= t.micros()))
                .collect();
            let values: Vec<f64> = of.iter().filter_map(|s| s.duration_ms).collect();
            check_stats(report.duration_ms.as_ref().unwrap(), &values);
            assert_eq!(report.records as usize, of.len());
            let errors = of.iter().filter(|s| s.is_error()).count();
            assert_eq!(report.errors as usize, errors);
            assert!(close(report.error_rate, errors as f64 / of.len() as f64));
            // Per function.
            let mut per: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for s in &of {
                if let (Some(f), Some(d)) = (&s.function, s.duration_ms) {
                    per.entry(f.clone()).or_default().push(d);
                }
            }
            assert_eq!(report.functions.len(), per.len());
            for f in &report.functions {
                check_stats(&f.duration_ms, &per[&f.function]);
            }
            let totals: Vec<f64> = report.functions.iter().map(|f| f.total_ms()).collect();
            assert!(
                totals.windows(2).all(|w| w[0] >= w[1]),
                "most total time first"
            );
        }
    }
    let none = analyzer().analyze_performance("zeta", None).unwrap();
    assert!(none.duration_ms.is_none());
    assert_eq!(none.records, 24);
}

#[test]
fn slow_operations_over_the_threshold_slowest_first() {
    for (threshold, limit) in [
        (500.0, None),
        (900.0, Some(5)),
        (10_000.0, None),
        (0.0, Some(1)),
    ] {
        let report = analyzer()
            .slow_operations("ranking", threshold, limit)
            .unwrap();
        let mut want: Vec<f64> = data()
            .specs
            .iter()
            .filter(|s| s.component == "ranking")
            .filter_map(|s| s.duration_ms)
            .filter(|&d| d > threshold)
            .collect();
        want.sort_by(|a, b| b.partial_cmp(a).unwrap());
        assert_eq!(report.total as usize, want.len());
        want.truncate(limit.unwrap_or(usize::MAX));
        let got: Vec<f64> = report.operations.iter().map(|o| o.duration_ms).collect();
        assert_eq!(got, want, "threshold {threshold}");
        assert!(report
            .operations
            .iter()
            .all(|o| o.function.starts_with("ranking_fn") && o.record.component == "ranking"));
    }
}

#[test]
fn summary_per_component() {
    let summary = analyzer().summary();
    let mut by: BTreeMap<&str, Vec<&Spec>> = BTreeMap::new();
    for s in &data().specs {
        by.entry(s.component.as_str()).or_default().push(s);
    }
    let names: Vec<&str> = summary
        .components
        .iter()
        .map(|c| c.component.as_str())
        .collect();
    assert_eq!(names, by.keys().copied().collect::<Vec<_>>());
    assert_eq!(summary.records as usize, data().specs.len());
    for c in &summary.components {
        let of = &by[c.component.as_str()];
        assert_eq!(c.records as usize, of.len(), "{}", c.component);
        assert_eq!(
            c.errors as usize,
            of.iter().filter(|s| s.is_error()).count()
        );
        let mut types: BTreeMap<String, u64> = BTreeMap::new();
        for s in of.iter().filter(|s| s.is_error()) {
            *types
                .entry(s.error_type.clone().unwrap_or("-".into()))
                .or_insert(0) += 1;
        }
        assert_eq!(
            c.errors_by_type.iter().cloned().collect::<BTreeMap<_, _>>(),
            types
        );
        let values: Vec<f64> = of.iter().filter_map(|s| s.duration_ms).collect();
        match &c.duration_ms {
            Some(d) => check_stats(d, &values),
            None => assert!(values.is_empty()),
        }
        assert_eq!(
            c.first.unwrap().micros(),
            of.iter().map(|s| s.micros).min().unwrap()
        );
        assert_eq!(
            c.last.unwrap().micros(),
            of.iter().map(|s| s.micros).max().unwrap()
        );
    }
    assert!(summary.scan.skipped.is_empty());
}

#[test]
fn an_archive_being_compressed_is_read_once() {
    let d = build();
    let gz = files_with(d.root(), "archived/candidate/")
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "gz"))
        .unwrap();
    // The archiver's intermediate state: x.log still there next to a finished x.log.gz.
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap()),
        &mut text,
    )
    .unwrap();
    std::fs::write(gz.with_extension(""), &text).unwrap();
    let summary = LogAnalyzer::new(d.root()).summary();
    let want = d
        .specs
        .iter()
        .filter(|s| s.component == "candidate")
        .count();
    let got = summary
        .components
        .iter()
        .find(|c| c.component == "candidate")
        .unwrap();
    assert_eq!(got.records as usize, want);
}

#[test]
fn bad_lines_are_skipped_and_counted_never_fatal() {
    let d = build();
    let file = d.root().join("logs/candidate/candidate.log");
    let good = |msg: &str| {
        format!(
            "{{\"timestamp\":\"2025-11-16T12:00:00.000000Z\",\"level\":\"INFO\",\"component\":\"candidate\",\"request_id\":\"req-bad\",\"message\":\"{msg}\"}}\n"
        )
    };
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    f.write_all(good("first").as_bytes()).unwrap();
    // Malformed: not JSON, and JSON that is cut short.
    f.write_all(b"this is not json \"request_id\":\"req-bad\"\n")
        .unwrap();
    f.write_all(
        b"{\"timestamp\":\"2025-11-16T12:00:00.000000Z\",\"request_id\":\"req-bad\",\"message\":\n",
    )
    .unwrap();
    // Invalid UTF-8 inside a string.
    f.write_all(b"{\"timestamp\":\"2025-11-16T12:00:00.000000Z\",\"level\":\"INFO\",\"component\":\"candidate\",\"request_id\":\"req-bad\",\"message\":\"\xff\xfe\"}\n").unwrap();
    // JSON nested 100,000 deep.
    let mut deep =
        b"{\"timestamp\":\"2025-11-16T12:00:00.000000Z\",\"request_id\":\"req-bad\",\"data\":"
            .to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    deep.extend(std::iter::repeat_n(b']', 100_000));
    deep.extend(b"}\n");
    f.write_all(&deep).unwrap();
    // A 100 MB line, valid JSON otherwise.
    let mut long =
        b"{\"timestamp\":\"2025-11-16T12:00:00.000000Z\",\"request_id\":\"req-bad\",\"message\":\""
            .to_vec();
    long.extend(std::iter::repeat_n(b'x', 100 * 1024 * 1024));
    long.extend(b"\"}\n");
    f.write_all(&long).unwrap();
    drop(long);
    f.write_all(good("second").as_bytes()).unwrap();
    // A partial last line.
    f.write_all(
        b"{\"timestamp\":\"2025-11-16T12:00:00.000000Z\",\"request_id\":\"req-bad\",\"mess",
    )
    .unwrap();
    drop(f);

    let a = LogAnalyzer::new(d.root()).threads(2);
    let trace = a.trace_request("req-bad");
    let messages: Vec<&str> = trace.entries.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["first", "second"]);
    let skipped: BTreeMap<SkipReason, u64> = trace
        .scan
        .skipped
        .iter()
        .map(|s| {
            assert_eq!(s.file, "candidate/candidate.log");
            (s.reason, s.lines)
        })
        .collect();
    let want: BTreeMap<SkipReason, u64> = [
        (SkipReason::Malformed, 2),
        (SkipReason::InvalidUtf8, 1),
        (SkipReason::TooDeep, 1),
        (SkipReason::TooLong, 1),
        (SkipReason::Partial, 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(skipped, want);
    let trace_skipped = skipped;
    assert_eq!(
        trace
            .scan
            .skipped
            .iter()
            .find(|s| s.reason == SkipReason::Malformed)
            .unwrap()
            .to_string(),
        "skipped 2 malformed lines in candidate/candidate.log"
    );

    // Every other query survives the same file and still counts the good records.
    let summary = a.summary();
    let candidate = summary
        .components
        .iter()
        .find(|c| c.component == "candidate")
        .unwrap();
    let want = d
        .specs
        .iter()
        .filter(|s| s.component == "candidate")
        .count()
        + 2;
    assert_eq!(candidate.records as usize, want);
    let reasons: Vec<SkipReason> = summary.scan.skipped.iter().map(|s| s.reason).collect();
    for r in [
        SkipReason::Malformed,
        SkipReason::InvalidUtf8,
        SkipReason::TooDeep,
        SkipReason::TooLong,
        SkipReason::Partial,
    ] {
        assert!(reasons.contains(&r), "summary misses {r:?}: {reasons:?}");
    }
    let of: Vec<&Spec> = d
        .specs
        .iter()
        .filter(|s| s.component == "candidate")
        .collect();
    // The timing reader does not read messages: the line whose only fault is its message's
    // invalid UTF-8 counts as a record there (the summary above skips it).
    let perf = a.analyze_performance("candidate", None).unwrap();
    assert_eq!(perf.records as usize, of.len() + 3);
    assert_eq!(
        perf.errors as usize,
        of.iter().filter(|s| s.is_error()).count()
    );
    let slow = a.slow_operations("candidate", 0.0, None).unwrap();
    let timed = of.iter().filter(|s| s.duration_ms.is_some_and(|d| d > 0.0));
    assert_eq!(slow.total as usize, timed.count());
    let skipped: BTreeMap<SkipReason, u64> = perf
        .scan
        .skipped
        .iter()
        .map(|s| (s.reason, s.lines))
        .collect();
    let mut read_anyway = trace_skipped;
    read_anyway.remove(&SkipReason::InvalidUtf8);
    assert_eq!(skipped, read_anyway);
    let errors = a.find_errors(&ErrorFilter::default()).unwrap();
    let want = d.specs.iter().filter(|s| s.is_error()).count();
    assert_eq!(errors.total as usize, want);
}

#[test]
fn a_corrupt_archive_is_reported_and_the_rest_is_read() {
    let d = build();
    let gz = files_with(d.root(), "archived/ranking/")
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "gz"))
        .unwrap();
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let summary = LogAnalyzer::new(d.root()).summary();
    assert_eq!(summary.scan.errors.len(), 1, "{:?}", summary.scan.errors);
    assert!(summary.scan.errors[0].file.starts_with("archived/ranking/"));
    let ranking = summary
        .components
        .iter()
        .find(|c| c.component == "ranking")
        .unwrap();
    let all = d.specs.iter().filter(|s| s.component == "ranking").count() as u64;
    assert!(ranking.records > 0 && ranking.records < all);
}

#[test]
fn daily_files_stand_in_for_a_missing_main_file() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, guard) = tracekit::exporters::LogWriter::builder()
        .root(dir.path())
        .daily_files(tracekit::exporters::DailyFiles::All)
        .build()
        .unwrap();
    for i in 0..5 {
        let data = [("duration_ms", tracekit::exporters::Value::F64(f64::from(i)))];
        let r =
            tracekit::exporters::Record::new(tracekit::exporters::Level::INFO, "feedback", "saved")
                .data(&data)
                .timing(true);
        writer.write(&r).unwrap();
    }
    drop(guard);
    let a = LogAnalyzer::new(dir.path());
    assert_eq!(
        a.summary().records,
        5,
        "the daily copy is not counted again"
    );
    std::fs::remove_file(dir.path().join("logs/feedback/feedback.log")).unwrap();
    assert_eq!(a.summary().records, 5, "read from the daily file instead");
    let perf = a.analyze_performance("feedback", None).unwrap();
    assert_eq!(perf.duration_ms.unwrap().count, 5);
}

#[test]
fn log_records_of_the_request_trace_without_a_request_id_are_included() {
    use opentelemetry::trace::{SpanId, TraceId};
    use tracekit::exporters::{Level, Record};
    let dir = tempfile::tempdir().unwrap();
    let t0 = std::time::SystemTime::now();
    let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
    let tid = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
    let other = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let sid = SpanId::from_hex("b7ad6b7169203331").unwrap();
    let records = vec![
        Record::new(Level::INFO, "serving", "request in")
            .timestamp(at(0))
            .request_id("req-otel")
            .trace(tid, sid),
        // OTel-only code in the same trace: a log record with the trace id and no request id,
        // in another component's file.
        Record::new(Level::WARNING, "cache", "cache miss from otel-only code")
            .timestamp(at(1))
            .trace(tid, sid),
        // Another trace's record without a request id, and an untraced one: not ours.
        Record::new(Level::INFO, "cache", "other trace")
            .timestamp(at(2))
            .trace(other, sid),
        Record::new(Level::INFO, "cache", "no trace").timestamp(at(3)),
        Record::new(Level::INFO, "serving", "request out")
            .timestamp(at(4))
            .request_id("req-otel")
            .trace(tid, sid),
        // Another request in the same trace is not taken in.
        Record::new(Level::INFO, "serving", "someone else")
            .timestamp(at(5))
            .request_id("req-other")
            .trace(tid, sid),
    ];
    analyzer_common::write_more(dir.path(), &records);
    let trace = LogAnalyzer::new(dir.path())
        .threads(2)
        .trace_request("req-otel");
    let got: Vec<(&str, &str)> = trace
        .entries
        .iter()
        .map(|e| (e.component.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("serving", "request in"),
            ("cache", "cache miss from otel-only code"),
            ("serving", "request out"),
        ]
    );
    // Counted once, though the record is also in the daily file (when enabled).
    assert_eq!(trace.trace_ids, ["0af7651916cd43dd8448eb211c80319c"]);
}
