//! `slow-tick`: a cron val whose runs take 2.5 s, longer than a 1 s
//! schedule, for the tests: each run counts itself in blob `started` as it
//! begins and in `finished` as it ends, so runs side by side would show as
//! more starts than one beyond the finishes.

use std::time::Duration;

use valbox_sdk::{CronEvent, Error, blob};

fn slow_tick(_event: CronEvent) -> Result<(), Error> {
    let started: u64 = blob::update_json("started", |n: Option<u64>| n.unwrap_or(0) + 1)?;
    let finished: u64 = blob::get_json("finished")?.unwrap_or(0);
    if started > finished + 1 {
        blob::set_json("overlapped", &true)?;
    }
    std::thread::sleep(Duration::from_millis(2_500));
    blob::update_json("finished", |n: Option<u64>| n.unwrap_or(0) + 1)?;
    Ok(())
}

valbox_sdk::cron_val!(slow_tick);
valbox_sdk::scopes!("blob:read", "blob:write");
