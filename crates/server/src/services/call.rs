//! The call of a val, whatever asked for it (an HTTP route, the Run API):
//! take a turn among the owner's calls, mint the call's token, build its
//! capability context, run it, log it, and map a failure to the error its
//! caller sees.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tracing::Instrument;

use crate::app::App;
use crate::services::call_log::{LogRecord, clip};
use crate::services::error::{Kind, ServiceError, ServiceResult};
use crate::services::libraries::plan_for;
use crate::services::owner_slots::FullShare;
use tokio::sync::OwnedSemaphorePermit;
use valbox_caps::{CallHost, CallOf, Grant, RequestBudget, Within};
use valbox_model::{Principal, Scopes, Trigger, ValKind};
use valbox_runtime::{CallError, Input, Output, Reuse};
use valbox_store::{ValRow, VersionRow};

/// What a call answered, and the CPU time it used.
pub struct Called {
    pub output: Output,
    pub cpu_time: Duration,
}

/// The 429 for a call that found its share of the owner's slots full.
fn too_many_calls(full: FullShare) -> ServiceError {
    let message = match full {
        FullShare::Others { open, reserved: 0 } => format!(
            "this val's owner already has {open} calls running, the most at once; retry shortly"
        ),
        FullShare::Others { open, reserved } => format!(
            "this val's owner already has {open} calls running for other callers, \
             the most they may have at once ({reserved} more are kept for the owner's \
             own calls); retry shortly"
        ),
        FullShare::All { total } => format!(
            "you already have {total} calls of your vals running, the most at once; \
             retry shortly"
        ),
    };
    ServiceError::new(Kind::TooMany, "too_many_calls", message)
}

/// The 429 for a nested call that found the calling owner's slots full.
fn too_many_nested_calls(full: FullShare) -> ServiceError {
    let total = match full {
        FullShare::All { total } => total,
        FullShare::Others { open, reserved } => open + reserved,
    };
    ServiceError::new(
        Kind::TooMany,
        "too_many_calls",
        format!(
            "the vals of the owner whose val this request called already have {total} calls \
             running, nested calls included, the most at once; retry shortly"
        ),
    )
}

/// One call's host state and deadline, made once its component is loaded:
/// the one deadline of the call (its token's expiry, the bound of its host
/// work, where the runtime stops it), its grant and its capabilities'
/// state. The token is revoked when the grant is dropped, however the call
/// ends.
pub fn begin(
    app: &App,
    val: &ValRow,
    scopes: Scopes,
    within: Option<Within>,
) -> (CallHost, Instant) {
    begin_carrying(app, val, scopes, within, Vec::new())
}

/// [`begin`] for a call started by mail that went through the vals
/// `mail_trace`.
fn begin_carrying(
    app: &App,
    val: &ValRow,
    scopes: Scopes,
    within: Option<Within>,
    mail_trace: Vec<String>,
) -> (CallHost, Instant) {
    let call_of = CallOf {
        owner_id: &val.owner_id,
        owner_name: &val.owner_name,
        val_id: &val.id,
        val_name: &val.name,
        budget: match &within {
            Some(w) => w.budget.clone(),
            None => {
                RequestBudget::carrying_mail_trace(&val.owner_id, &app.config.limits, mail_trace)
            }
        },
        within,
    };
    let grant = Grant::mint(
        &app.auth.call_tokens,
        &app.auth.usage,
        call_of,
        scopes,
        app.config.limits.timeout,
    );
    let deadline = grant.deadline();
    (app.caps.start_call(grant, val), deadline)
}

/// Run one call of `val` under the owner's concurrency limit, log it, and
/// map a failed call to the error its caller sees.
pub async fn call(
    app: &App,
    val: &ValRow,
    caller: Option<&Principal>,
    input: Input,
    trigger: Trigger,
) -> ServiceResult<Called> {
    let by_owner = caller.is_some_and(|p| p.user_id == val.owner_id);
    call_within(app, val, by_owner, input, trigger, None).await
}

/// The call a nested call (a val calling `val` as an API) runs within,
/// and the calling val, which the callee's log names.
pub struct Nested {
    pub within: Within,
    pub caller: String,
}

/// [`call`] for a caller known by whether it is `val`'s owner (its own
/// token, or one of its vals), and within another call when a val calls
/// `val` as an API.
pub async fn call_within(
    app: &App,
    val: &ValRow,
    by_owner: bool,
    input: Input,
    trigger: Trigger,
    nested: Option<Nested>,
) -> ServiceResult<Called> {
    let (within, caller) = match nested {
        Some(n) => (Some(n.within), Some(n.caller)),
        None => (None, None),
    };
    let _slots = take_slots(app, val, by_owner, within.as_ref())?;
    let latest = val
        .latest
        .as_ref()
        .ok_or_else(|| ServiceError::internal("val without version"))?;
    let scopes = val.scopes;
    let plan = plan_for(app, val, latest).await?;
    let mail_trace = match &input {
        Input::Email(mail) => crate::mail_in::trace_of(&mail.headers),
        _ => Vec::new(),
    };
    let start = || begin_carrying(app, val, scopes, within, mail_trace);
    let hang_up = HangUpLog::arm(app, first_record(val, latest.version, trigger, caller));
    // Everything the host logs during the call carries the call's span.
    let span = tracing::info_span!(
        "call",
        val = %format_args!("{}/{}", val.owner_name, val.name),
        version = latest.version,
        trigger = trigger.as_str(),
        call_id = %format_args!("{:016x}", call_id()),
    );
    let outcome = match reuse_of(app, val, latest) {
        Some(reuse) => {
            app.runtime
                .invoke_reusing(&plan, input, start, &reuse)
                .instrument(span.clone())
                .await
        }
        None => {
            app.runtime
                .invoke(&plan, input, start)
                .instrument(span.clone())
                .await
        }
    };
    let (fuel_used, duration, cpu_time) = (outcome.fuel_used, outcome.duration, outcome.cpu_time);
    let (result, status, error) = settle(app, outcome.result, &outcome.failed_in, &outcome.host);
    span.in_scope(|| {
        tracing::debug!(
            status,
            ms = duration.as_secs_f64() * 1e3,
            cpu_ms = cpu_time.as_secs_f64() * 1e3,
            fuel_used,
            "call ended"
        )
    });
    finish(
        app,
        LogRecord {
            status,
            duration_us: duration.as_micros() as i64,
            cpu_us: cpu_time.as_micros() as i64,
            fuel_used,
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            error,
            ..hang_up.disarm()
        },
    );
    Ok(Called {
        output: result?,
        cpu_time,
    })
}

/// How long a reused instance waits for its next call. It also bounds how
/// long an instance can serve env vars changed on another node.
const REUSE_IDLE: Duration = Duration::from_secs(30);

/// The reuse of `val`'s HTTP instances its owner opted into, if any: an
/// instance serves only calls of the same val, version, scopes and fetch
/// allowlist (a change of env vars retires the val's instances: see
/// [`retire_reused`]).
fn reuse_of(app: &App, val: &ValRow, version: &VersionRow) -> Option<Reuse> {
    if val.reuse <= 1 || version.kind != ValKind::Http {
        return None;
    }
    let allowlist = val.fetch_allowlist.as_ref().map(|hosts| hosts.join(" "));
    Some(Reuse {
        key: format!(
            "{}{}/{}/{}/{:?}",
            reuse_prefix(&val.id),
            version.version,
            version.sha256,
            val.scopes,
            allowlist
        ),
        max_requests: val.reuse,
        idle: REUSE_IDLE,
        max_memory: app.config.limits.memory_bytes / 2,
    })
}

/// Retire the waiting instances of `val_id` on this node: what they read of
/// its env vars may be out of date.
pub fn retire_reused(app: &App, val_id: &str) {
    app.runtime.retire_reused(&reuse_prefix(val_id));
}

/// How every reuse key of `val_id` begins.
fn reuse_prefix(val_id: &str) -> String {
    format!("{val_id}/")
}

/// A turn among the owner's calls; for a nested call of another owner's
/// val, also one of the owner whose val the request called: what one
/// request fans out into is paid for by that owner's share, not only by
/// the callees'.
fn take_slots(
    app: &App,
    val: &ValRow,
    by_owner: bool,
    within: Option<&Within>,
) -> ServiceResult<[Option<OwnedSemaphorePermit>; 2]> {
    let own = app
        .try_owner_slot(&val.owner_id, by_owner)
        .map_err(too_many_calls)?;
    let root = match within.map(|w| w.budget.root_owner()) {
        Some(root) if root != val.owner_id => Some(
            app.try_owner_slot(root, true)
                .map_err(too_many_nested_calls)?,
        ),
        _ => None,
    };
    Ok([Some(own), root])
}

/// A call's log record as it starts: what a hang-up leaves in the log.
pub(crate) fn first_record(
    val: &ValRow,
    version: i64,
    trigger: Trigger,
    caller: Option<String>,
) -> LogRecord {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    LogRecord {
        owner_id: val.owner_id.clone(),
        val_id: val.id.clone(),
        val_name: val.name.clone(),
        version,
        trigger,
        caller,
        time_ns: started.as_nanos() as i64,
        status: 0,
        duration_us: 0,
        cpu_us: 0,
        fuel_used: 0,
        stdout: String::new(),
        stderr: String::new(),
        error: None,
    }
}

/// What a call's caller gets, and the status and error its log records:
/// the failure, the library it failed in, and the scopes it was denied.
fn settle(
    app: &App,
    result: Result<Output, CallError>,
    failed_in: &Option<String>,
    host: &Option<CallHost>,
) -> (ServiceResult<Output>, u16, Option<String>) {
    let denials = host
        .as_ref()
        .map(|h| h.grant.denial_notes())
        .unwrap_or_default();
    for scope in host.iter().flat_map(|h| h.grant.denied_scopes()) {
        app.metrics.denied(scope.as_str());
    }
    let result = result.map_err(call_error);
    let status = match &result {
        Ok(Output::Http(r)) => r.status,
        Ok(Output::Script(Ok(_))) => 200,
        Ok(Output::Script(Err(_))) => 400,
        Ok(Output::Cron(Ok(())) | Output::Email(Ok(()))) => 200,
        Ok(Output::Cron(Err(_)) | Output::Email(Err(_))) => 500,
        Err((e, _)) => e.kind.http_status(),
    };
    let mut error = match (&result, failed_in) {
        (Err((_, detail)), Some(library)) if !detail.contains("in library") => {
            Some(format!("{detail} (in library `{library}`)"))
        }
        (Err((_, detail)), _) => Some(detail.clone()),
        (Ok(Output::Script(Err(m)) | Output::Cron(Err(m)) | Output::Email(Err(m))), _) => {
            Some(format!("the val returned an error: {m}"))
        }
        _ => None,
    };
    if !denials.is_empty() {
        let note = format!("denied scopes: {}", denials.join(", "));
        error = Some(error.map_or(note.clone(), |e| format!("{e}; {note}")));
    }
    // A script val's error is its own text: it counts like its output.
    if let Some(e) = error.as_mut() {
        clip(e, app.config.limits.log_bytes);
    }
    (result.map_err(|(e, _)| e), status, error)
}

/// Count a call in the metrics and write its log record.
fn finish(app: &App, record: LogRecord) {
    app.metrics.call(
        record.trigger,
        record.status,
        record.duration_us as f64 / 1e6,
        record.fuel_used,
    );
    app.logs.record(record);
}

/// An id that ties a call's log lines together: a counter from a random
/// start, so ids differ across restarts without a system call per call.
fn call_id() -> u64 {
    static NEXT: std::sync::LazyLock<std::sync::atomic::AtomicU64> =
        std::sync::LazyLock::new(|| {
            let mut start = [0u8; 8];
            // Without randomness the ids still differ within one run.
            let _ = getrandom::fill(&mut start);
            u64::from_le_bytes(start).into()
        });
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The status logged for a call whose caller went away mid-call (nginx's
/// "client closed request"); no caller ever sees it.
const STATUS_CALLER_HUNG_UP: u16 = 499;

/// Logs a call that is dropped before it ends: when a caller hangs up,
/// its request future, and with it the call, is dropped mid-way.
struct HangUpLog<'a> {
    app: &'a App,
    record: Option<LogRecord>,
    started: std::time::Instant,
}

impl<'a> HangUpLog<'a> {
    fn arm(app: &'a App, record: LogRecord) -> Self {
        Self {
            app,
            record: Some(record),
            started: std::time::Instant::now(),
        }
    }

    /// The call ended: hand back the record for its caller to complete.
    fn disarm(mut self) -> LogRecord {
        self.record.take().expect("armed until disarmed")
    }
}

impl Drop for HangUpLog<'_> {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            finish(
                self.app,
                LogRecord {
                    status: STATUS_CALLER_HUNG_UP,
                    duration_us: self.started.elapsed().as_micros() as i64,
                    error: Some(
                        "the caller hung up before the val answered; the call was stopped".into(),
                    ),
                    ..record
                },
            );
        }
    }
}

/// The error the caller sees, and the detail for the owner's log. Trap
/// details stay in the log: they may reveal the val's internals.
fn call_error(e: CallError) -> (ServiceError, String) {
    let (kind, code, message) = match &e {
        CallError::Fuel(n) => (
            Kind::OutOfFuel,
            "fuel_exhausted",
            format!("the val used up its fuel limit ({n} units of CPU work) and was stopped"),
        ),
        CallError::Deadline(d) => (
            Kind::Deadline,
            "deadline_exceeded",
            format!(
                "the val ran past its wall-clock limit of {} ms and was stopped",
                d.as_millis()
            ),
        ),
        CallError::Memory(n) => (
            Kind::OutOfSpace,
            "memory_limit_exceeded",
            format!("the val tried to use more than its memory limit of {n} bytes and was stopped"),
        ),
        CallError::ResponseTooLarge(n) => (
            Kind::ValFailed,
            "response_too_large",
            format!("the val's response body is larger than the limit of {n} bytes"),
        ),
        CallError::Trap(_) => (
            Kind::ValFailed,
            "val_crashed",
            "the val crashed (a panic or trap); its owner can read the details in the val's logs"
                .to_string(),
        ),
        CallError::Busy => (
            Kind::Busy,
            "server_busy",
            "the server is running as many vals as it can; retry shortly".to_string(),
        ),
        CallError::Link(detail) => (
            Kind::ValFailed,
            "library_unavailable",
            format!(
                "the val's libraries no longer fit its imports ({detail}); its owner must redeploy it"
            ),
        ),
        CallError::Unavailable(detail) => (
            Kind::Busy,
            "component_unavailable",
            format!(
                "this node could not fetch the val's component from the object store ({detail}); retry shortly"
            ),
        ),
        CallError::Internal(detail) => return (ServiceError::internal(detail), detail.clone()),
    };
    let detail = match e {
        CallError::Trap(detail) => format!("{message}: {detail}"),
        _ => message.clone(),
    };
    (ServiceError::new(kind, code, message), detail)
}
