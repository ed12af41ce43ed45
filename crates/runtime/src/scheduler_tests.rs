//! Unit tests of `scheduler`: no server, no wasm build.

use super::*;
use std::sync::atomic::AtomicUsize;

fn scheduler(slots: usize) -> (Arc<Scheduler>, Arc<AtomicUsize>) {
    let preempted = Arc::new(AtomicUsize::new(0));
    let count = preempted.clone();
    let s = Scheduler::new(slots, move || {
        count.fetch_add(1, Ordering::Relaxed);
    });
    (s, preempted)
}

fn seat(s: &Arc<Scheduler>, used_ms: u64) -> Arc<Mutex<Seat>> {
    let seat = s.seat();
    lock(&seat).used = Duration::from_millis(used_ms);
    seat
}

fn hold(seat: &Arc<Mutex<Seat>>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    lock(seat).poll_hold(&mut cx).is_ready()
}

#[test]
fn free_slots_are_taken_at_once_and_the_rest_queue() {
    let (s, preempted) = scheduler(2);
    let (a, b, c) = (seat(&s, 0), seat(&s, 0), seat(&s, 0));
    assert!(hold(&a) && hold(&b));
    assert_eq!(preempted.load(Ordering::Relaxed), 0);
    assert!(!hold(&c));
    assert_eq!(preempted.load(Ordering::Relaxed), 1, "queueing preempts");
    assert_eq!(s.running(), 2);
    lock(&a).leave();
    assert!(hold(&c), "a released slot goes to the waiter");
    assert_eq!(s.running(), 2);
}

#[test]
fn the_least_cpu_used_goes_first_and_fifo_within_a_level() {
    let (s, _) = scheduler(1);
    let running = seat(&s, 0);
    assert!(hold(&running));
    let long = seat(&s, 5_000);
    let short1 = seat(&s, 1);
    let mid = seat(&s, 50);
    let short2 = seat(&s, 2);
    for waiting in [&long, &short1, &mid, &short2] {
        assert!(!hold(waiting));
    }
    let order = [&short1, &short2, &mid, &long];
    let mut holder = running;
    for next in order {
        lock(&holder).leave();
        assert!(hold(next));
        holder = next.clone();
    }
    lock(&holder).leave();
    assert_eq!(s.running(), 0);
}

/// The guest yields at a tick, and its call is polled again.
fn tick_and_resume(seat: &Arc<Mutex<Seat>>) -> bool {
    let mut s = lock(seat);
    assert!(s.tick(Duration::ZERO));
    s.suspended();
    drop(s);
    hold(seat)
}

#[test]
fn a_running_call_gives_way_only_to_its_level_or_better() {
    let (s, preempted) = scheduler(1);
    let running = seat(&s, 50); // level 1
    assert!(hold(&running));
    assert!(
        !lock(&running).tick(Duration::from_secs(60)),
        "no yield before a quantum"
    );
    assert!(tick_and_resume(&running), "nobody waits");
    let long = seat(&s, 5_000);
    assert!(!hold(&long));
    assert!(tick_and_resume(&running), "a worse level waits");
    let same = seat(&s, 20);
    assert!(!hold(&same));
    assert_eq!(preempted.load(Ordering::Relaxed), 2);
    assert!(!tick_and_resume(&running), "its own level waits");
    assert_eq!(
        preempted.load(Ordering::Relaxed),
        2,
        "giving way preempts no one"
    );
    assert!(hold(&same));
    assert!(!hold(&long));
    drop(same);
    assert!(hold(&running), "back before the worse level");
}

/// The guest yields at a tick and its call parks.
fn park(seat: &Arc<Mutex<Seat>>) {
    let mut s = lock(seat);
    assert!(s.tick(Duration::ZERO));
    s.suspended();
}

#[test]
fn a_parked_call_lends_its_slot_to_its_level_or_better() {
    let (s, _) = scheduler(1);
    let long = seat(&s, 5_000);
    assert!(hold(&long));
    park(&long);
    let short = seat(&s, 0);
    assert!(hold(&short), "took the parked call's slot");
    assert!(!hold(&long), "queued when back");
    lock(&short).leave();
    assert!(hold(&long));

    drop(long);

    let fresh = seat(&s, 0);
    assert!(hold(&fresh));
    park(&fresh);
    let worse = seat(&s, 5_000);
    assert!(!hold(&worse), "a worse level waits");
    assert!(hold(&fresh), "back with its slot");
    drop(fresh);
    assert!(hold(&worse));
    drop(worse);
    assert_eq!(s.running(), 0);
}

#[test]
fn dropping_a_waiting_seat_leaves_the_queue() {
    let (s, _) = scheduler(1);
    let a = seat(&s, 0);
    assert!(hold(&a));
    let b = seat(&s, 0);
    assert!(!hold(&b));
    drop(b);
    assert_eq!(s.best_waiting.load(Ordering::Relaxed), NONE_WAITING);
    drop(a);
    assert_eq!(s.running(), 0);
}

#[test]
fn a_slot_granted_to_a_seat_that_goes_away_passes_on() {
    let (s, _) = scheduler(1);
    let (a, b, c) = (seat(&s, 0), seat(&s, 0), seat(&s, 0));
    assert!(hold(&a));
    assert!(!hold(&b) && !hold(&c));
    lock(&a).leave(); // granted to b, which never observes it
    drop(b);
    assert!(hold(&c), "b's slot went to c");
    drop(c);
    drop(a);
    assert_eq!(s.running(), 0);
}

#[test]
fn a_scheduled_call_holds_its_slot_only_while_polled() {
    let (s, _) = scheduler(1);
    let seat = seat(&s, 0);
    let mut pending_once = false;
    let call = std::future::poll_fn(move |_| {
        if std::mem::replace(&mut pending_once, true) {
            Poll::Ready(7)
        } else {
            Poll::Pending // a host call that waits
        }
    });
    let mut fut = scheduled(seat.clone(), call);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    assert_eq!(s.running(), 0, "released while the guest waits");
    assert_eq!(Pin::new(&mut fut).poll(&mut cx), Poll::Ready(7));
    assert_eq!(s.running(), 0);
}

#[test]
fn a_dropped_call_frees_a_slot_it_kept_across_a_yield() {
    let (s, _) = scheduler(1);
    let seat = seat(&s, 0);
    let ticking = seat.clone();
    let call = std::future::poll_fn(move |_| {
        assert!(lock(&ticking).tick(Duration::ZERO));
        Poll::<()>::Pending // the tick's yield
    });
    let mut fut = scheduled(seat.clone(), call);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    assert_eq!(s.running(), 1, "kept across the yield");
    drop(fut);
    assert_eq!(s.running(), 0);
}
