//! One call's stores: the val's and each library's, with nothing ambient,
//! under the call's limits; and what a trap or a stop meant.

use std::sync::Arc;
use std::time::Instant;

use valbox_model::Limits;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreContextMut, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

use crate::libraries::{self, LibrarySlot};
use crate::limits::CallLimiter;
use crate::{CallError, CallShared, CallState, EPOCH_TICK, Host};

/// A fresh store for one of a call's components. Nothing ambient: no
/// preopened directories, no sockets, no host environment variables;
/// stdout and stderr go to the call's log. It stops at the call's deadline
/// and yields its CPU slot as the scheduler decides.
pub(crate) fn new_store<H: Host>(
    engine: &Engine,
    shared: Arc<CallShared>,
    host: H,
    libraries: Vec<LibrarySlot<H>>,
) -> Store<CallState<H>> {
    let wasi = WasiCtx::builder()
        .stdout(shared.stdout.clone())
        .stderr(shared.stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    let deadline = shared.deadline;
    let ticking = shared.seat.clone();
    let state = CallState {
        wasi,
        http: wasmtime_wasi_http::WasiHttpCtx::new(),
        table: ResourceTable::new(),
        limiter: CallLimiter::new(&shared.limits, shared.memory.clone()),
        shared,
        libraries,
        host,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    arm(&mut store, deadline, ticking);
    store
}

/// Stop the store's guest at `deadline`, yielding its CPU slot in `seat`
/// as the scheduler decides: for each call the store serves.
pub(crate) fn arm<H: Host>(
    store: &mut Store<CallState<H>>,
    deadline: Instant,
    ticking: Arc<std::sync::Mutex<crate::scheduler::Seat>>,
) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            return Ok(UpdateDeadline::Interrupt);
        }
        // A busy guest yields at every tick: tokio's yield wakes the call
        // only after the worker has polled sockets and timers, so requests
        // are read while every worker runs wasm. Whether the call then
        // gives its slot to a waiting one is the scheduler's choice.
        let mut seat = ticking.lock().unwrap_or_else(|p| p.into_inner());
        Ok(if seat.tick(EPOCH_TICK / 2) {
            UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
        } else {
            UpdateDeadline::Continue(1)
        })
    });
}

/// The store of the library in `slot` of `caller`'s component, for this
/// call: the library's own host view and libraries, the call's shared parts.
pub(crate) fn library_store<H: Host>(
    caller: &mut StoreContextMut<'_, CallState<H>>,
    slot: usize,
) -> Store<CallState<H>> {
    let state = caller.data();
    let library = &state.libraries[slot];
    let plan = library.plan();
    let host = state.host.library(&plan.label, &plan.view);
    let libraries = libraries::slots(&plan.plan.libraries, &library.loaded().libraries);
    new_store(caller.engine(), state.shared.clone(), host, libraries)
}

pub(crate) fn classify<H: Host>(
    err: wasmtime::Error,
    store: &Store<CallState<H>>,
    limits: &Limits,
) -> CallError {
    if store.data().shared.memory.refused() {
        return CallError::Memory(limits.memory_bytes);
    }
    if err
        .downcast_ref::<crate::wasi_http::BodyTooLarge>()
        .is_some()
    {
        return CallError::ResponseTooLarge(limits.response_body_bytes);
    }
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return CallError::Busy;
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::Fuel(limits.fuel),
        Some(Trap::Interrupt) => CallError::Deadline(limits.timeout),
        _ => CallError::Trap(format!("{err:#}")),
    }
}
