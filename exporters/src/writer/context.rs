//! What a batch's writes share: the time they are stamped with and the problems to report.

use std::path::PathBuf;

use super::Shared;
use crate::encoder::timestamp::{unix_micros, utc_day};

/// Something the writer has to tell in a `WARNING` record of its own.
#[derive(Debug)]
pub(crate) struct Warning {
    pub component: String,
    pub message: String,
    pub path: PathBuf,
    pub error: String,
    pub since_micros: i64,
    pub lost_records: u64,
    pub lost_bytes: u64,
}

/// What a file needs to know about the batch being written.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub now_micros: i64,
    pub today: i64,
    pub warnings: Vec<Warning>,
}

impl<'a> Ctx<'a> {
    /// A context stamped with the writer's clock now.
    pub(crate) fn new(shared: &'a Shared) -> Ctx<'a> {
        let now_micros = unix_micros(shared.config.clock.now());
        Ctx {
            shared,
            now_micros,
            today: utc_day(now_micros),
            warnings: Vec::new(),
        }
    }
}
