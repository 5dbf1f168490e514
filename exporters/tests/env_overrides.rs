//! Environment overrides: a value set in code wins over the environment, which wins over the
//! default. One test in its own binary, since the environment is process-wide.

use tracekit_exporters::{BuildError, Level, LogWriter, Record};

#[test]
fn environment_sets_defaults_and_code_overrides_it() {
    let tmp = tempfile::tempdir().unwrap();
    let from_env = tmp.path().join("from_env");
    let from_code = tmp.path().join("from_code");
    std::env::set_var("TRACEKIT_DIR", &from_env);

    let (writer, guard) = LogWriter::builder().build().unwrap();
    writer
        .write(&Record::new(Level::INFO, "ranking", "via env"))
        .unwrap();
    drop(guard);
    assert!(from_env.join("logs/ranking/ranking.log").is_file());

    let (writer, guard) = LogWriter::builder().root(&from_code).build().unwrap();
    writer
        .write(&Record::new(Level::INFO, "ranking", "via code"))
        .unwrap();
    drop(guard);
    assert!(from_code.join("logs/ranking/ranking.log").is_file());

    std::env::set_var("TRACEKIT_LOSS_POLICY", "sometimes");
    let err = LogWriter::builder().build().unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::Env {
                var: "TRACEKIT_LOSS_POLICY",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("lossless or lossy"), "{err}");
    std::env::remove_var("TRACEKIT_LOSS_POLICY");

    std::env::set_var("TRACEKIT_FSYNC", "250ms");
    std::env::set_var("TRACEKIT_COMPRESSION", "none");
    std::env::set_var("TRACEKIT_RETENTION_DAYS", "7");
    assert!(LogWriter::builder().build().is_ok());
    std::env::set_var("TRACEKIT_RETENTION_DAYS", "a week");
    let err = LogWriter::builder().build().unwrap_err();
    assert!(err.to_string().contains("TRACEKIT_RETENTION_DAYS"), "{err}");
}
