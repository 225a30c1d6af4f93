//! The process's one tracing subscriber: it keeps the events logged with target
//! `audit` (as JSON objects of their fields) for tests to read, and writes the
//! app's warnings and errors to the running test's captured output, which cargo
//! prints only when that test fails: a 500 answers a reference only, and its
//! cause is then right under the failure. Installed once, by the first
//! [`crate::TestApp`] of the process, before any app logs.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

static LINES: OnceLock<Arc<Mutex<Vec<Value>>>> = OnceLock::new();

/// Installs the capture as the global subscriber (once per process).
pub fn install() -> Arc<Mutex<Vec<Value>>> {
    LINES
        .get_or_init(|| {
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::Layer as _;
            let lines = Arc::new(Mutex::new(Vec::new()));
            let warnings = tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_ansi(false)
                .with_filter(tracing_subscriber::filter::LevelFilter::WARN);
            let subscriber = tracing_subscriber::registry()
                .with(Capture(lines.clone()))
                .with(warnings);
            tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
            lines
        })
        .clone()
}

/// The audit lines whose `member_sid` field is `member_sid`, in order.
pub fn lines_for(member_sid: &str) -> Vec<Value> {
    install()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l["member_sid"] == member_sid)
        .cloned()
        .collect()
}

struct Capture(Arc<Mutex<Vec<Value>>>);

struct Fields(Map<String, Value>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "audit" {
            let mut fields = Fields(Map::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(Value::Object(fields.0));
        }
    }
}
