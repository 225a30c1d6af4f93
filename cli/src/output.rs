//! What the CLI prints: JSON for scripts (`--json`), short lines for people;
//! progress bars on stderr only for a terminal and never with `--json`/`--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::api::ApiError;
use crate::Global;

pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("JSON"));
}

/// A one-line summary of a Twilio resource.
fn summary(v: &Value) -> String {
    let field = |k: &str| v[k].as_str().map(str::to_owned);
    let sid = field("sid")
        .or_else(|| field("member_sid"))
        .unwrap_or_default();
    let name = field("unique_name")
        .or_else(|| field("friendly_name"))
        .or_else(|| field("identity"))
        .or_else(|| field("filename"))
        .or_else(|| field("body"))
        .unwrap_or_default();
    let extra = match (field("status"), v["blocked"].as_bool(), field("type")) {
        (Some(s), _, _) => format!("  [{s}]"),
        (None, Some(b), _) => format!("  blocked={b}"),
        (None, None, Some(t)) => format!("  [{t}]"),
        _ => String::new(),
    };
    format!("{sid}  {name}{extra}")
}

impl Out {
    pub fn new(g: &Global) -> Self {
        Self {
            json: g.json,
            quiet: g.quiet,
        }
    }

    pub fn item(&self, v: &Value) {
        if self.json {
            print_json(v);
        } else {
            println!("{}", summary(v));
        }
    }

    pub fn list(&self, items: &[Value]) {
        if self.json {
            print_json(&Value::Array(items.to_vec()));
        } else {
            for v in items {
                println!("{}", summary(v));
            }
        }
    }

    pub fn deleted(&self, id: &str) {
        if self.json {
            print_json(&serde_json::json!({"deleted": id}));
        } else {
            println!("deleted {id}");
        }
    }

    /// A note for people (stderr), silent with --json or --quiet.
    pub fn note(&self, msg: &str) {
        if !self.json && !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// A byte progress bar with rate and ETA; hidden for --json, --quiet, or when
    /// stderr is not a terminal.
    pub fn bar(&self, total: u64, label: &str) -> ProgressBar {
        let target = if self.json || self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        bar
    }
}

/// Prints an error: the Twilio body as JSON on stdout with --json, a line on stderr always.
pub fn fail(e: &anyhow::Error, json: bool) {
    if json {
        let body = match e.downcast_ref::<ApiError>() {
            Some(api) if !api.body.is_null() => api.body.clone(),
            Some(api) => serde_json::json!({"status": api.status, "message": api.message}),
            None => serde_json::json!({"message": format!("{e:#}")}),
        };
        print_json(&serde_json::json!({"error": body}));
    }
    eprintln!("error: {e:#}");
}
