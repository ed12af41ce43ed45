//! The server's metrics, served in the OpenMetrics text format that
//! Prometheus scrapes (`GET /metrics` on `--metrics-listen`). Counters and
//! histograms are updated where things happen; the gauges that describe
//! state held elsewhere (components loaded, the email outbox) are read when
//! scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use valbox_model::Trigger;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    trigger: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplyLabel {
    /// The SMTP reply's code class: 2xx, 4xx or 5xx.
    reply: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScopeLabel {
    scope: String,
}

/// Every metric of the server. Cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    requests: Family<StatusLabel, Counter>,
    request_seconds: Histogram,
    calls: Family<CallLabels, Counter>,
    call_seconds: Histogram,
    call_fuel: Histogram,
    denied: Family<ScopeLabel, Counter>,
    connections_refused: Counter,
    body_timeouts: Counter,
    open_connections: Gauge,
    loaded_components: Gauge,
    loaded_bytes: Gauge,
    outbox_depth: Gauge,
    log_records_dropped: Counter,
    /// Time from a database's first unsynced write to its replica having it.
    pub replication_lag: Histogram,
    /// Time from a cron run's due time to its start.
    pub cron_lateness: Histogram,
    /// Messages whose DATA the SMTP server answered, by reply class.
    mail_received: Family<ReplyLabel, Counter>,
    /// Time from a message's acknowledgement to the start of the delivery
    /// that its val took.
    pub mail_delivery_delay: Histogram,
}

/// What the scrape reads from the rest of the server.
pub struct Snapshot {
    pub loaded_components: usize,
    pub loaded_bytes: usize,
    pub outbox_depth: i64,
    pub log_records_dropped: u64,
}

/// Register `metric` in `registry` and keep a handle to it.
fn add_with<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// [`add_with`] a new counter, gauge or family.
fn add<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    add_with(registry, name, help, M::default())
}

/// 100 µs to about 30 s.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(1e-4, 3.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("valbox");
        let r = &mut registry;
        let calls_help =
            "Calls of vals, by trigger (http, run, api) and status (499: the caller hung up)";
        Self {
            requests: add(r, "http_requests", "HTTP requests answered, by status"),
            request_seconds: add_with(
                r,
                "http_request_duration_seconds",
                "Time from a request's head to its response's head",
                seconds(),
            ),
            calls: add(r, "calls", calls_help),
            call_seconds: add_with(
                r,
                "call_duration_seconds",
                "Wall-clock time of a call",
                seconds(),
            ),
            // 10 thousand to 10 billion units.
            call_fuel: add_with(
                r,
                "call_fuel",
                "Fuel a call used",
                Histogram::new(exponential_buckets(1e4, 10.0, 7)),
            ),
            denied: add(
                r,
                "scope_denials",
                "Host imports refused because the call's token lacked the scope",
            ),
            connections_refused: add(
                r,
                "connections_refused",
                "Connections closed at accept: a cap on open connections was reached",
            ),
            body_timeouts: add(
                r,
                "request_body_timeouts",
                "Requests whose body did not arrive in time",
            ),
            open_connections: add(r, "open_connections", "Client connections open"),
            loaded_components: add(
                r,
                "loaded_components",
                "Pre-linked components kept in memory",
            ),
            loaded_bytes: add(
                r,
                "loaded_component_bytes",
                "Compiled code and data of the loaded components",
            ),
            outbox_depth: add(r, "email_outbox_depth", "Emails queued for delivery"),
            log_records_dropped: add(
                r,
                "call_log_records_dropped",
                "Call log records dropped because the log writer fell behind",
            ),
            // 50 ms to about 10 s, a quarter apart.
            replication_lag: add_with(
                r,
                "sqlite_replication_lag_seconds",
                "Time from a written database's first unsynced write to its replica holding it",
                Histogram::new(exponential_buckets(0.05, 1.25, 24)),
            ),
            // 5 ms to about 30 s, a third apart.
            cron_lateness: add_with(
                r,
                "cron_lateness_seconds",
                "Time from a cron run's due time to its start",
                Histogram::new(exponential_buckets(0.005, 1.33, 31)),
            ),
            mail_received: add(
                r,
                "mail_received",
                "Messages the SMTP server answered after their data, by reply class",
            ),
            // 5 ms to about 30 s, a third apart.
            mail_delivery_delay: add_with(
                r,
                "mail_delivery_delay_seconds",
                "Time from a message's acknowledgement to the start of its delivery",
                Histogram::new(exponential_buckets(0.005, 1.33, 31)),
            ),
            registry,
        }
    }
}

impl Metrics {
    /// A message's data answered with `code`.
    pub fn mail_received(&self, code: &str) {
        let reply = match code.as_bytes().first() {
            Some(b'2') => "2xx",
            Some(b'4') => "4xx",
            _ => "5xx",
        };
        self.mail_received
            .get_or_create(&ReplyLabel { reply })
            .inc();
    }

    pub fn request(&self, status: u16, seconds: f64) {
        self.requests.get_or_create(&StatusLabel { status }).inc();
        self.request_seconds.observe(seconds);
    }

    pub fn call(&self, trigger: Trigger, status: u16, seconds: f64, fuel: u64) {
        let trigger = trigger.as_str();
        self.calls
            .get_or_create(&CallLabels { trigger, status })
            .inc();
        self.call_seconds.observe(seconds);
        self.call_fuel.observe(fuel as f64);
    }

    pub fn denied(&self, scope: &str) {
        self.denied
            .get_or_create(&ScopeLabel {
                scope: scope.to_string(),
            })
            .inc();
    }

    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    pub fn body_timeout(&self) {
        self.body_timeouts.inc();
    }

    /// Counts one open connection until the guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection {
        self.open_connections.inc();
        OpenConnection(self.open_connections.clone())
    }

    /// The text a scrape answers, with the state gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        self.loaded_components.set(now.loaded_components as i64);
        self.loaded_bytes.set(now.loaded_bytes as i64);
        self.outbox_depth.set(now.outbox_depth);
        let seen = self.log_records_dropped.get();
        self.log_records_dropped
            .inc_by(now.log_records_dropped.saturating_sub(seen));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// One open connection, counted in `valbox_open_connections`.
pub struct OpenConnection(Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The media type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_the_scraped_gauges() {
        let metrics = Metrics::default();
        metrics.request(200, 0.001);
        metrics.request(404, 0.002);
        metrics.call(Trigger::Http, 200, 0.01, 50_000);
        metrics.denied("blob:write");
        let open = metrics.connection_opened();
        let text = metrics.render(&Snapshot {
            loaded_components: 3,
            loaded_bytes: 1000,
            outbox_depth: 2,
            log_records_dropped: 5,
        });
        for line in [
            "valbox_http_requests_total{status=\"200\"} 1",
            "valbox_http_requests_total{status=\"404\"} 1",
            "valbox_calls_total{trigger=\"http\",status=\"200\"} 1",
            "valbox_call_fuel_count 1",
            "valbox_scope_denials_total{scope=\"blob:write\"} 1",
            "valbox_open_connections 1",
            "valbox_loaded_components 3",
            "valbox_email_outbox_depth 2",
            "valbox_call_log_records_dropped_total 5",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        drop(open);
        let text = metrics.render(&Snapshot {
            loaded_components: 0,
            loaded_bytes: 0,
            outbox_depth: 0,
            log_records_dropped: 7,
        });
        assert!(text.contains("valbox_open_connections 0"));
        assert!(text.contains("valbox_call_log_records_dropped_total 7"));
    }
}
