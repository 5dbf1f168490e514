//! An event's fields, visited once: the ones that become record keys (message, component,
//! the `CRITICAL` and timing marks, the error and its backtrace) are kept aside, the rest are
//! encoded into the record's `data` as they come. What each field of a call site is for is
//! decided once per call site ([`Callsites`]).

use std::error::Error;
use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

use crate::exception::{type_name_len, write_source_chain};
use crate::exporters::{FieldKey, FieldWriter, RecordEncoder};
use crate::keys::{COMPONENT, CRITICAL_FIELD, TIMING_FIELD};
use crate::sink::Sink;

/// The field that holds an event's message.
const MESSAGE: &str = "message";
/// A captured backtrace (`backtrace = %bt`): part of the exception when the event has one.
pub(crate) const BACKTRACE: &str = "backtrace";

/// The event fields that feed record keys rather than `data`.
#[derive(Default)]
pub(crate) struct KeyFields {
    pub message: String,
    pub component: String,
    pub has_component: bool,
    pub critical: bool,
    pub timing: bool,
    /// The error field that became the record's exception.
    pub error_field: Option<&'static str>,
    pub exc_kind: String,
    pub exc_message: String,
    pub exc_traceback: String,
    /// A `backtrace` field: appended to the exception's traceback when there is one, else
    /// written into `data`.
    pub backtrace: String,
    pub has_backtrace: bool,
}

/// Buffers grown by one huge event are not kept.
const KEEP_SCRATCH: usize = 16 * 1024;

impl KeyFields {
    /// Forgets the last event's fields, keeping the buffers unless one grew large.
    pub(crate) fn clear(&mut self) {
        for s in [
            &mut self.message,
            &mut self.component,
            &mut self.exc_kind,
            &mut self.exc_message,
            &mut self.exc_traceback,
            &mut self.backtrace,
        ] {
            if s.capacity() > KEEP_SCRATCH {
                *s = String::new();
            } else {
                s.clear();
            }
        }
        self.has_component = false;
        self.critical = false;
        self.timing = false;
        self.error_field = None;
        self.has_backtrace = false;
    }
}

/// What the layer does with one field of a call site, decided once per call site.
pub(crate) enum Role {
    Message,
    Component,
    Backtrace,
    Critical,
    Timing,
    /// Into `data`, under this key.
    Data(FieldKey),
}

impl Role {
    fn of(encoder: &RecordEncoder, name: &str) -> Role {
        match name {
            MESSAGE => Role::Message,
            COMPONENT => Role::Component,
            BACKTRACE => Role::Backtrace,
            CRITICAL_FIELD => Role::Critical,
            TIMING_FIELD => Role::Timing,
            name => Role::Data(FieldKey::new(encoder, name)),
        }
    }
}

/// The roles of a call site's fields, by field index, for one layer.
#[derive(Default)]
struct CallsiteRoles {
    layer: u64,
    callsite: usize,
    roles: Vec<Role>,
}

/// Per-thread [`CallsiteRoles`], direct-mapped by call site address.
pub(crate) struct Callsites(Box<[CallsiteRoles; CALLSITE_SLOTS]>);

const CALLSITE_SLOTS: usize = 64;

impl Default for Callsites {
    fn default() -> Self {
        Callsites(Box::new(std::array::from_fn(|_| CallsiteRoles::default())))
    }
}

impl Callsites {
    /// The roles of `meta`'s fields under `layer`, computed on first use.
    #[inline]
    pub(crate) fn roles(
        &mut self,
        layer: &Sink,
        meta: &'static tracing::Metadata<'static>,
    ) -> &[Role] {
        let callsite = meta as *const _ as usize;
        let slot = &mut self.0[(callsite >> 4) % CALLSITE_SLOTS];
        if slot.layer != layer.serial || slot.callsite != callsite {
            let encoder = layer.writer.encoder();
            slot.roles.clear();
            slot.roles
                .extend(meta.fields().iter().map(|f| Role::of(encoder, f.name())));
            slot.layer = layer.serial;
            slot.callsite = callsite;
        }
        &slot.roles
    }
}

/// Visits an event's fields once: record keys into [`KeyFields`], the rest into `data`.
pub(crate) struct EventVisitor<'w, 'b> {
    pub w: &'w mut FieldWriter<'b>,
    pub fields: &'w mut KeyFields,
    pub roles: &'w [Role],
}

impl<'w> EventVisitor<'w, '_> {
    /// The `data` key of `field`, or `None` for a record key (whatever its type).
    #[inline]
    fn data_key(&self, field: &Field) -> Option<&'w FieldKey> {
        let roles: &'w [Role] = self.roles;
        match roles.get(field.index()) {
            Some(Role::Data(key)) => Some(key),
            _ => None,
        }
    }

    #[inline]
    fn role(&self, field: &Field) -> Option<&'w Role> {
        let roles: &'w [Role] = self.roles;
        roles.get(field.index())
    }
}

impl Visit for EventVisitor<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(key) = self.data_key(field) {
            self.w.f64(key, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(key) = self.data_key(field) {
            self.w.i64(key, value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(key) = self.data_key(field) {
            self.w.u64(key, value);
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        if let Some(key) = self.data_key(field) {
            self.w.value(key, &crate::exporters::Value::I128(value));
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if let Some(key) = self.data_key(field) {
            self.w.value(key, &crate::exporters::Value::U128(value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        match self.role(field) {
            Some(Role::Critical) => self.fields.critical = value,
            Some(Role::Timing) => self.fields.timing = value,
            Some(Role::Data(key)) => self.w.bool(key, value),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let role = self.role(field);
        let f = &mut *self.fields;
        match role {
            Some(Role::Message) => f.message.push_str(value),
            Some(Role::Component) => {
                f.component.push_str(value);
                f.has_component = true;
            }
            Some(Role::Backtrace) => {
                f.backtrace.push_str(value);
                f.has_backtrace = true;
            }
            Some(Role::Data(key)) => self.w.str(key, value),
            _ => {}
        }
    }

    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        if let Some(key) = self.data_key(field) {
            self.w.bytes(key, value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        let f = &mut *self.fields;
        if f.error_field.is_some() {
            // Only the first error is the exception; the others are data.
            if let Some(key) = self.data_key(field) {
                self.w.display(key, &value);
            }
            return;
        }
        f.error_field = Some(field.name());
        let _ = write!(f.exc_message, "{value}");
        let _ = write!(f.exc_kind, "{value:?}");
        let kind_len = type_name_len(&f.exc_kind);
        if kind_len == 0 {
            f.exc_kind.clear();
            f.exc_kind.push_str("Error");
        } else {
            f.exc_kind.truncate(kind_len);
        }
        write_source_chain(&mut f.exc_traceback, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let role = self.role(field);
        let f = &mut *self.fields;
        match role {
            Some(Role::Message) => {
                let _ = write!(f.message, "{value:?}");
            }
            Some(Role::Backtrace) => {
                let _ = write!(f.backtrace, "{value:?}");
                f.has_backtrace = true;
            }
            Some(Role::Component) => {
                let _ = write!(f.component, "{value:?}");
                f.has_component = true;
            }
            Some(Role::Data(key)) => self.w.debug(key, value),
            _ => {}
        }
    }
}
