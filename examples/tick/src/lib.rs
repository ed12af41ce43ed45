//! `tick`: a cron val that counts its runs in a blob (scopes `blob:read`
//! and `blob:write`). Each run adds one to the JSON number under `ticks`
//! (missing means 0) and logs it; a denied scope fails the run. The write
//! is a compare-and-swap (`blob::update_json`), so overlapping runs all
//! count.

use valbox_sdk::{CronEvent, Error, blob};

const KEY: &str = "ticks";

fn tick(event: CronEvent) -> Result<(), Error> {
    let ticks: u64 = blob::update_json(KEY, |n: Option<u64>| n.unwrap_or(0) + 1)?;
    println!("tick {ticks} ({}, due at {} ms)", event.schedule, event.due);
    Ok(())
}

valbox_sdk::cron_val!(tick);
valbox_sdk::scopes!("blob:read", "blob:write");
