//! The log subscriber of both long-running commands: stderr (stdout is reserved for output such as the dry-run
//! diff), filtered by `RUST_LOG` (default `info`), plain text or one JSON object per line with the event's fields
//! at the top level.

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The name of the webhook's per-review span. It is left out of log lines: the `review answered` event that ends
/// each review carries the same fields, and formatting a span's fields for every review (to print them only on
/// the rare denial) was the largest cost of a review in the benchmark. Other layers (a tracing exporter) still
/// see it.
pub const REVIEW_SPAN: &str = "review";

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Installs the global subscriber. Plain lines are coloured only on a terminal: `kubectl logs` and log
/// collectors would show the escape codes. A subscriber already installed (tests) is kept.
pub fn init(format: LogFormat) {
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let not_review_span = tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.is_span() && meta.name() == REVIEW_SPAN)
    });
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = match format {
        LogFormat::Plain => layer
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(not_review_span).with_filter(env))
        .try_init();
}
