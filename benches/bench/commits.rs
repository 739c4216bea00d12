//! When exactly each payment was committed: a tracing layer that watches the service's own
//! "payment recorded" event (emitted right after the purchase transaction commits, inside the
//! `record` span that carries the charge id) and hands the instant to whoever waits for that
//! charge. Nothing in the service changes for this; only its log events are observed.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{LazyLock, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

static WAITING: LazyLock<Mutex<HashMap<String, oneshot::Sender<Instant>>>> =
    LazyLock::new(Mutex::default);

/// Resolves with the instant the payment with this charge id was committed.
pub fn expect(charge: &str) -> oneshot::Receiver<Instant> {
    let (tx, rx) = oneshot::channel();
    WAITING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(charge.to_string(), tx);
    rx
}

struct Charge(String);

#[derive(Default)]
struct Fields {
    charge: Option<String>,
    message: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "charge" => self.charge = Some(value.to_string()),
            "message" => self.message = Some(value.to_string()),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        match field.name() {
            "charge" => self.charge = Some(format!("{value:?}")),
            "message" => self.message = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

pub struct CommitLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for CommitLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "record" {
            return;
        }
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let (Some(charge), Some(span)) = (f.charge, ctx.span(id)) {
            span.extensions_mut().insert(Charge(charge));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let at = Instant::now();
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message.as_deref() != Some("payment recorded") {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(Charge(c)) = span.extensions().get::<Charge>() {
                let tx = WAITING.lock().unwrap_or_else(|p| p.into_inner()).remove(c);
                if let Some(tx) = tx {
                    let _ = tx.send(at);
                }
                return;
            }
        }
    }
}
