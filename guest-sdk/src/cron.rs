//! The event a cron val receives.

/// One due run of a cron val.
///
/// ```no_run
/// use valbox_sdk::CronEvent;
///
/// fn run(event: CronEvent) -> Result<(), String> {
///     match event.last_run {
///         Some(last) => println!("{} ms since the last run", event.due.saturating_sub(last)),
///         None => println!("first run of `{}`", event.schedule),
///     }
///     Ok(())
/// }
/// # valbox_sdk::cron_val!(run);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronEvent {
    /// The schedule, as set (`every 15m`, `0 9 * * 1-5`, ...).
    pub schedule: String,
    /// When this run was due, in milliseconds since the Unix epoch.
    pub due: u64,
    /// When the last run started (ms since the epoch), or `None` on the
    /// first run.
    pub last_run: Option<u64>,
}
