//! The writer thread: takes whole batches from the queue, routes each line to its files,
//! writes each file once per batch, and does the housekeeping (reopen checks, fsync, loss
//! reports).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::config::FsyncPolicy;
use super::context::{Ctx, Warning};
use super::queue::Batch;
use super::rolling::{FileKind, RollingFile};
use super::{Shared, FLAG_ERROR, FLAG_INTERNAL, FLAG_TIMING};
use crate::encoder::timestamp::{format_rfc3339_micros, from_unix_micros};
use crate::record::{CodeContext, Record};
use crate::value::Value;
use crate::Level;

/// FNV-1a: component names are short and few.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

struct ComponentFiles {
    main: RollingFile,
    daily: Option<RollingFile>,
}

struct Router {
    index: HashMap<Box<[u8]>, usize, BuildHasherDefault<Fnv>>,
    components: Vec<ComponentFiles>,
    errors: RollingFile,
    performance: RollingFile,
}

impl Router {
    fn new(ctx: &Ctx<'_>) -> Router {
        let default = ctx.shared.config.default_component.as_str();
        Router {
            index: HashMap::default(),
            components: Vec::new(),
            errors: RollingFile::new(ctx, FileKind::Errors, "errors", default),
            performance: RollingFile::new(ctx, FileKind::Performance, "performance", default),
        }
    }

    fn files_of(&mut self, ctx: &Ctx<'_>, component: &[u8]) -> &mut ComponentFiles {
        let i = match self.index.get(component) {
            Some(&i) => i,
            None => {
                // The encoder wrote a normalised name, so it is ASCII.
                let name = std::str::from_utf8(component).unwrap_or("app");
                let daily = ctx
                    .shared
                    .config
                    .daily
                    .includes(name)
                    .then(|| RollingFile::new(ctx, FileKind::Daily, name, name));
                self.components.push(ComponentFiles {
                    main: RollingFile::new(ctx, FileKind::Main, name, name),
                    daily,
                });
                self.index
                    .insert(component.into(), self.components.len() - 1);
                self.components.len() - 1
            }
        };
        &mut self.components[i]
    }

    fn route(&mut self, ctx: &mut Ctx<'_>, line: &[u8], component: &[u8], flags: u8) {
        let error = flags & FLAG_ERROR != 0;
        let timing = flags & FLAG_TIMING != 0;
        self.files_of(ctx, component);
        let i = self.index[component];
        let Router {
            components,
            errors,
            performance,
            ..
        } = self;
        let files = &mut components[i];
        files
            .main
            .append(ctx, line, flags & FLAG_INTERNAL == 0, error);
        if let Some(daily) = &mut files.daily {
            daily.append(ctx, line, false, error);
        }
        // A copy never reaches the disk before its record: when appending it writes the
        // copy's file, the component's file is written first (a crash in between then leaves
        // the record without its copy, never the copy without its record).
        for (copy, wanted) in [(errors, error), (performance, timing)] {
            if wanted {
                if copy.writes_on_append(line.len()) {
                    files.main.flush(ctx);
                }
                copy.append(ctx, line, false, error);
            }
        }
    }

    fn all(&mut self) -> impl Iterator<Item = &mut RollingFile> {
        self.components
            .iter_mut()
            .flat_map(|c| std::iter::once(&mut c.main).chain(c.daily.as_mut()))
            .chain([&mut self.errors, &mut self.performance])
    }
}

pub(crate) fn spawn(shared: Arc<Shared>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("tracekit-writer".into())
        .spawn(move || Worker::new(&shared).run())
}

struct Worker<'a> {
    shared: &'a Shared,
    router: Router,
    line: Vec<u8>,
    reported_dropped: u64,
    last_check: Instant,
    last_sync: Instant,
    last_sweep: Instant,
}

/// Retention runs at least this often, besides start-up and rotations.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Marks the writer finished even if it unwinds, so no caller waits for it forever.
struct Finished<'a>(&'a Shared);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.queue.finish();
    }
}

impl<'a> Worker<'a> {
    fn new(shared: &'a Shared) -> Worker<'a> {
        let ctx = Ctx::new(shared);
        Worker {
            shared,
            router: Router::new(&ctx),
            line: Vec::new(),
            reported_dropped: 0,
            last_check: Instant::now(),
            last_sync: Instant::now(),
            last_sweep: Instant::now(),
        }
    }

    fn tick(&self) -> Duration {
        let mut tick = self.shared.config.reopen_check.min(Duration::from_secs(1));
        if let FsyncPolicy::Interval(d) = self.shared.config.fsync {
            tick = tick.min(d);
        }
        tick
    }

    fn run(mut self) {
        let shared = self.shared;
        let _finished = Finished(shared);
        let tick = self.tick();
        let mut batch = shared.queue.batch();
        let mut gather = false;
        loop {
            let closing = shared.queue.take(&mut batch, gather, tick);
            self.write_batch(&batch);
            self.housekeeping(closing);
            let empty = batch.is_empty();
            shared.queue.done(&mut batch);
            if closing && empty {
                break;
            }
            gather = !closing && !empty;
        }
        // Last words: what went wrong in the final batch, then everything to the files.
        let mut ctx = Ctx::new(shared);
        let warnings = std::mem::take(&mut ctx.warnings);
        for w in &warnings {
            self.write_warning(&mut ctx, w);
        }
        let sync = shared.config.fsync != FsyncPolicy::Never;
        for file in self.router.all() {
            file.flush(&mut ctx);
            if sync {
                file.sync(&mut ctx);
            }
        }
    }

    /// Routes every line of `batch` to its files and writes them.
    fn write_batch(&mut self, batch: &Batch) {
        let mut ctx = Ctx::new(self.shared);
        for line in batch.lines() {
            self.router
                .route(&mut ctx, line.bytes, line.component, line.flags);
        }
        self.finish(&mut ctx);
        // Report what went wrong in this batch; problems while reporting wait for the next.
        let warnings = std::mem::take(&mut ctx.warnings);
        if !warnings.is_empty() {
            for w in &warnings {
                self.write_warning(&mut ctx, w);
            }
            self.finish(&mut ctx);
        }
        for w in ctx.warnings.drain(..) {
            self.write_warning(&mut Ctx::new(self.shared), &w);
        }
    }

    /// Writes every file's pending records and syncs as the policy says.
    fn finish(&mut self, ctx: &mut Ctx<'_>) {
        let policy = self.shared.config.fsync;
        let interval_due =
            matches!(policy, FsyncPolicy::Interval(d) if self.last_sync.elapsed() >= d);
        for file in self.router.all() {
            if file.has_pending() {
                file.flush(ctx);
            }
            let sync = match policy {
                FsyncPolicy::Never => false,
                FsyncPolicy::OnError => file.needs_sync,
                FsyncPolicy::Interval(_) => interval_due && file.dirty,
            };
            if sync {
                file.sync(ctx);
            }
        }
        if interval_due {
            self.last_sync = Instant::now();
        }
    }

    fn housekeeping(&mut self, closing: bool) {
        let mut ctx = Ctx::new(self.shared);
        let dropped = self.shared.queue.dropped();
        if dropped > self.reported_dropped {
            let n = dropped - self.reported_dropped;
            self.reported_dropped = dropped;
            let component = self.shared.config.default_component.clone();
            self.write_record(
                &mut ctx,
                &component,
                &format!("dropped {n} records: the log queue was full (lossy policy)"),
                &[
                    ("dropped", Value::U64(n)),
                    ("total_dropped", Value::U64(dropped)),
                ],
            );
        }
        if self.last_check.elapsed() >= self.shared.config.reopen_check && !closing {
            self.last_check = Instant::now();
            for file in self.router.all() {
                file.check_identity(&mut ctx);
                file.close_if_idle(&mut ctx, self.shared.config.close_idle);
            }
        }
        if self.last_sweep.elapsed() >= SWEEP_EVERY {
            self.last_sweep = Instant::now();
            self.shared.archiver.sweep();
        }
        let warnings = std::mem::take(&mut ctx.warnings);
        for w in &warnings {
            self.write_warning(&mut ctx, w);
        }
        self.finish(&mut ctx);
    }

    fn write_warning(&mut self, ctx: &mut Ctx<'_>, w: &Warning) {
        let path = w.path.display().to_string();
        let since = format_rfc3339_micros(w.since_micros);
        let since = std::str::from_utf8(&since).unwrap_or_default();
        self.write_record(
            ctx,
            &w.component,
            &w.message,
            &[
                ("path", Value::Str(&path)),
                ("error", Value::Str(&w.error)),
                ("since", Value::Str(since)),
                ("lost_records", Value::U64(w.lost_records)),
                ("lost_bytes", Value::U64(w.lost_bytes)),
            ],
        );
    }

    /// Encodes one of the writer's own `WARNING` records and routes it (uncounted).
    fn write_record(
        &mut self,
        ctx: &mut Ctx<'_>,
        component: &str,
        message: &str,
        data: &[(&str, Value<'_>)],
    ) {
        let record = Record::new(Level::WARNING, component, message)
            .timestamp(from_unix_micros(ctx.now_micros))
            .logger("tracekit_exporters::writer")
            .data(&data)
            .context(CodeContext::here());
        self.line.clear();
        let comp = self.shared.encoder.encode(&record, &mut self.line);
        let line = std::mem::take(&mut self.line);
        self.router.route(ctx, &line, &line[comp], FLAG_INTERNAL);
        self.line = line;
    }
}
