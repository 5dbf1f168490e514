//! File and directory modes under a permissive umask. The umask is process-wide, so this
//! binary holds this one test only.

mod writer_common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tracekit_exporters::{Compression, DailyFiles, Level, Record, Value};
use writer_common::{builder, walk};

#[test]
fn files_are_0640_and_dirs_0750_even_under_umask_000() {
    // SAFETY: umask has no preconditions; this binary runs no other test.
    let old = unsafe { libc::umask(0) };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let (writer, guard) = builder(&root)
        .max_file_size(1024)
        .error_file_size(1024)
        .performance_file_size(1024)
        .max_backups(1000)
        .daily_files(DailyFiles::All)
        .compression(Compression::Gzip { level: 1 })
        .build()
        .unwrap();
    let pad = "p".repeat(600);
    for i in 0..10u64 {
        let data = [("i", Value::U64(i)), ("pad", Value::Str(&pad))];
        writer
            .write(
                &Record::new(Level::ERROR, "perm", "e")
                    .data(&data)
                    .timing(true),
            )
            .unwrap();
    }
    writer.flush().unwrap();
    assert!(writer.wait_for_archives(Duration::from_secs(60)));
    drop(guard);
    // Plain archives too (they keep the live file's mode).
    let (writer, guard) = builder(&root)
        .max_file_size(1024)
        .max_backups(1000)
        .compression(Compression::None)
        .build()
        .unwrap();
    for _ in 0..3 {
        let data = [("pad", Value::Str(&pad))];
        writer
            .write(&Record::new(Level::INFO, "plain", "p").data(&data))
            .unwrap();
    }
    writer.flush().unwrap();
    assert!(writer.wait_for_archives(Duration::from_secs(60)));
    drop(guard);
    unsafe { libc::umask(old) };

    let (mut files, mut dirs) = (0, 0);
    let mut gz = 0;
    for p in std::iter::once(root.clone()).chain(walk(&root)) {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            assert_eq!(mode, 0o750, "{} is {mode:o}", p.display());
            dirs += 1;
        } else {
            assert!(meta.is_file(), "{}", p.display());
            assert_eq!(mode, 0o640, "{} is {mode:o}", p.display());
            files += 1;
            gz += usize::from(p.extension().is_some_and(|e| e == "gz"));
        }
    }
    // root, logs, archived, logs/{perm,errors,performance,plain}, archived/{same four}
    assert_eq!(dirs, 11);
    assert!(files > 20 && gz > 10, "{files} files, {gz} gz");
}
