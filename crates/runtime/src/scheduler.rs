//! Which guests run wasm at any moment. At most `slots` calls execute guest
//! code at once (by default one per core); the others wait in a multi-level
//! feedback queue. A call's level grows with the CPU time it has used, so a
//! short call overtakes long CPU-bound ones instead of queueing behind them
//! round-robin; within a level, first come first served.
//!
//! A call holds a slot only while its future is polled, which is when its
//! guest runs: when the guest waits in a host call (a sleep, a fetch, a
//! database query) its fiber suspends, the future returns `Pending` and the
//! slot passes on, so sleeping vals never block busy ones.
//!
//! A busy guest yields to the async runtime at every epoch tick
//! ([`Seat::tick`]), so that the worker thread polls its sockets: tokio
//! wakes a yielding task only after that. Across the yield the call is
//! *parked*: it keeps its slot against calls of worse levels, while a new
//! call of its level or better takes the slot at once. When polled again it
//! hands its slot to the best waiter if that one's level is its own or
//! better. Handing it over at the yield instead would wake the waiter into
//! the worker's run queue, which would then never empty, and a worker polls
//! its sockets only when it does (or every 61 tasks): requests would wait
//! that long to be read.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// CPU time at which a call moves down to the next level: below 1 ms it
/// is at level 0, below 10 ms at 1, below 100 ms at 2, below 1 s at 3,
/// past that at 4.
const LEVEL_AFTER: [Duration; 4] = [
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
];

/// `best_waiting` when no call waits.
const NONE_WAITING: u8 = u8::MAX;

/// A place in the queue, or among the parked: level first, then arrival.
type Key = (u8, u64);

pub struct Scheduler {
    slots: usize,
    queue: Mutex<Queue>,
    /// The best level waiting, mirrored out of `queue` so that the check a
    /// running guest makes at every tick takes no lock.
    best_waiting: AtomicU8,
    /// Makes running guests reach their epoch callback at once rather than
    /// at the next tick, so a new call waits for a worker's turn, not a tick.
    preempt: Box<dyn Fn() + Send + Sync>,
}

#[derive(Default)]
struct Queue {
    /// Slots held: by running calls, parked ones, and waiters granted one.
    running: usize,
    waiting: BTreeMap<Key, Arc<Waiter>>,
    parked: BTreeMap<Key, ()>,
    next_seq: u64,
}

/// A queued call. `granted` is set under the queue lock when a slot is
/// handed to it; from then on the slot is its own until it releases it.
struct Waiter {
    granted: AtomicBool,
    waker: Mutex<Waker>,
}

impl Scheduler {
    pub fn new(slots: usize, preempt: impl Fn() + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            slots: slots.max(1),
            queue: Mutex::default(),
            best_waiting: AtomicU8::new(NONE_WAITING),
            preempt: Box::new(preempt),
        })
    }

    /// A new call's seat, holding nothing yet.
    pub fn seat(self: &Arc<Self>) -> Arc<Mutex<Seat>> {
        Arc::new(Mutex::new(Seat {
            scheduler: self.clone(),
            state: State::Idle,
            used: Duration::ZERO,
            yielding: false,
        }))
    }

    /// Slots held (by running calls, parked ones, and waiters granted one).
    pub fn running(&self) -> usize {
        self.lock().running
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_key(q: &mut Queue, level: u8) -> Key {
        q.next_seq += 1;
        (level, q.next_seq)
    }

    /// Take a free slot or a parked call's (`None`), or join the queue at
    /// `level` and, if `preempt`, have the running guests check at once
    /// whether to give way.
    fn take(&self, level: u8, waker: &Waker, preempt: bool) -> Option<(Key, Arc<Waiter>)> {
        let mut q = self.lock();
        // A free slot means nobody waits: a released slot goes straight to
        // the best waiter.
        if q.running < self.slots {
            q.running += 1;
            return None;
        }
        // The worst parked call lends its slot to a call of its level or
        // better, unless a better call is already queued.
        let ahead = q.waiting.keys().next().is_some_and(|k| k.0 <= level);
        if let Some(parked) = q.parked.last_entry()
            && parked.key().0 >= level
            && !ahead
        {
            parked.remove();
            return None;
        }
        let key = Self::next_key(&mut q, level);
        let waiter = Arc::new(Waiter {
            granted: AtomicBool::new(false),
            waker: Mutex::new(waker.clone()),
        });
        q.waiting.insert(key, waiter.clone());
        self.publish(&q);
        drop(q);
        if preempt {
            (self.preempt)();
        }
        Some((key, waiter))
    }

    /// Hand a held slot to the best waiter, or free it.
    fn release(&self) {
        self.pass_on(&mut self.lock());
    }

    fn pass_on(&self, q: &mut Queue) {
        match q.waiting.pop_first() {
            Some((_, waiter)) => {
                waiter.granted.store(true, Ordering::Release);
                lock(&waiter.waker).wake_by_ref();
            }
            None => q.running -= 1,
        }
        self.publish(q);
    }

    /// A queued call gave up: drop its entry, or, if a slot was already
    /// handed to it, pass that slot on.
    fn cancel(&self, key: Key) {
        let mut q = self.lock();
        if q.waiting.remove(&key).is_some() {
            self.publish(&q);
        } else {
            self.pass_on(&mut q);
        }
    }

    /// Park a call that yields at a tick, keeping its slot for now.
    fn park(&self, level: u8) -> Key {
        let mut q = self.lock();
        let key = Self::next_key(&mut q, level);
        q.parked.insert(key, ());
        key
    }

    /// End a parking: true if the slot is still the call's own, false if a
    /// new call took it meanwhile.
    fn unpark(&self, key: Key) -> bool {
        self.lock().parked.remove(&key).is_some()
    }

    fn publish(&self, q: &Queue) {
        let best = q.waiting.keys().next().map_or(NONE_WAITING, |k| k.0);
        self.best_waiting.store(best, Ordering::Relaxed);
    }
}

/// One call's place: it runs holding a slot, is parked holding one, waits
/// for one, or none of these. Shared by the future that runs the call and
/// the store's epoch callback.
pub struct Seat {
    scheduler: Arc<Scheduler>,
    state: State,
    /// Slot time of the stretches of running that ended.
    used: Duration,
    /// Set by [`Seat::tick`]: the `Pending` about to come is a tick's yield.
    yielding: bool,
}

enum State {
    Idle,
    Running(Instant),
    Parked(Key),
    Waiting(Key, Arc<Waiter>),
}

impl Seat {
    /// The time this call has run holding a slot: its guest's CPU time.
    pub fn cpu_time(&self) -> Duration {
        match self.state {
            State::Running(since) => self.used + since.elapsed(),
            _ => self.used,
        }
    }

    fn level(&self) -> u8 {
        level_of(self.cpu_time())
    }

    /// A call at this one's level or better waits for a slot.
    fn outranked(&self) -> bool {
        self.scheduler.best_waiting.load(Ordering::Relaxed) <= self.level()
    }

    /// At an epoch tick: true if the guest is to yield to the async runtime
    /// now because it has run at least `quantum` since it last started. A
    /// short call that happens to cross a tick runs on to its end instead.
    pub fn tick(&mut self, quantum: Duration) -> bool {
        self.yielding = matches!(self.state, State::Running(since) if since.elapsed() >= quantum);
        self.yielding
    }

    /// Ready once this call holds a slot; queued by its level until then.
    fn poll_hold(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut preempt = true;
        if let State::Parked(key) = self.state {
            self.state = State::Idle;
            if self.scheduler.unpark(key) {
                if !self.outranked() {
                    self.state = State::Running(Instant::now());
                    return Poll::Ready(());
                }
                // Back with its slot, it gives way to a call of its level
                // or better, and queues preempting no one: it just had its
                // turn. If a new call took its slot meanwhile, it queues
                // like a call back from a host call.
                self.scheduler.release();
                preempt = false;
            }
        }
        match &self.state {
            State::Running(_) => return Poll::Ready(()),
            State::Waiting(_, waiter) => {
                // Register before looking, so a grant in between still wakes us.
                lock(&waiter.waker).clone_from(cx.waker());
                if !waiter.granted.load(Ordering::Acquire) {
                    return Poll::Pending;
                }
            }
            State::Idle | State::Parked(_) => {
                let queued = self.scheduler.take(self.level(), cx.waker(), preempt);
                if let Some((key, waiter)) = queued {
                    self.state = State::Waiting(key, waiter);
                    return Poll::Pending;
                }
            }
        }
        self.state = State::Running(Instant::now());
        Poll::Ready(())
    }

    /// The call's future returned `Pending`: its guest waits in a host call
    /// (the slot passes on) or yielded at a tick (the call parks).
    fn suspended(&mut self) {
        match self.state {
            State::Running(since) if std::mem::take(&mut self.yielding) => {
                self.used += since.elapsed();
                self.state = State::Parked(self.scheduler.park(level_of(self.used)));
            }
            _ => self.leave(),
        }
    }

    /// Release the slot or leave the queue, whichever applies.
    fn leave(&mut self) {
        self.yielding = false;
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Running(since) => {
                self.used += since.elapsed();
                self.scheduler.release();
            }
            State::Parked(key) => {
                if self.scheduler.unpark(key) {
                    self.scheduler.release();
                }
            }
            State::Waiting(key, _) => self.scheduler.cancel(key),
            State::Idle => {}
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.leave();
    }
}

fn level_of(cpu: Duration) -> u8 {
    LEVEL_AFTER.iter().take_while(|l| cpu >= **l).count() as u8
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A call's future that runs only while its seat holds a slot.
pub struct Scheduled<F> {
    seat: Arc<Mutex<Seat>>,
    call: Pin<Box<F>>,
}

pub fn scheduled<F: Future>(seat: Arc<Mutex<Seat>>, call: F) -> Scheduled<F> {
    Scheduled {
        seat,
        call: Box::pin(call),
    }
}

impl<F: Future> Future for Scheduled<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if lock(&this.seat).poll_hold(cx).is_pending() {
            return Poll::Pending;
        }
        // Not locked while the guest runs: its epoch callback locks it.
        let polled = this.call.as_mut().poll(cx);
        let mut seat = lock(&this.seat);
        match polled {
            Poll::Ready(_) => seat.leave(),
            Poll::Pending => seat.suspended(),
        }
        polled
    }
}

impl<F> Drop for Scheduled<F> {
    /// A dropped call (its caller hung up, or its time ran out) frees its
    /// slot at once, not when the last handle to its seat goes.
    fn drop(&mut self) {
        lock(&self.seat).leave();
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
