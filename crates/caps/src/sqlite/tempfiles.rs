//! Temporary storage of owners' SQLite statements, bounded per owner.
//!
//! TEMP tables and indices, sorts that spill, materialised subqueries,
//! DISTINCT and UNION sets and statement journals all live in temporary
//! files that SQLite opens through its VFS, outside `max_page_count`. Owner
//! connections open through [`VFS_NAME`], a thin layer over the default VFS
//! that counts every byte those files hold against the owner's
//! [`TempBudget`] and answers `SQLITE_FULL` past it. Database files pass
//! straight through to the default VFS untouched.
//!
//! The write-ahead log is bounded too, by an offset no write may pass: a
//! long reader can keep the WAL from restarting, and writers would
//! otherwise grow it past any quota.
//!
//! A temporary file is charged to the budget that the opening thread has
//! [`enter`]ed: each store operation runs on one thread from open to close,
//! and sorting on worker threads is off (`SQLITE_LIMIT_WORKER_THREADS` 0).

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rusqlite::ffi;

/// The name owner connections open their database with.
pub const VFS_NAME: &str = "valbox-bounded-temp";

/// Every open flag SQLite uses for a file that ends with the statement or
/// connection that made it.
const TEMP_KINDS: c_int = ffi::SQLITE_OPEN_TEMP_DB
    | ffi::SQLITE_OPEN_TEMP_JOURNAL
    | ffi::SQLITE_OPEN_TRANSIENT_DB
    | ffi::SQLITE_OPEN_SUBJOURNAL;

/// `SQLITE_FCNTL_SIZE_HINT`: would let SQLite allocate disk space without a
/// write, so it is not passed on for temporary files.
const FCNTL_SIZE_HINT: c_int = 5;

/// Bytes one owner's temporary files hold, against a limit.
#[derive(Debug)]
pub struct TempBudget {
    limit: u64,
    used: AtomicU64,
}

impl TempBudget {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: AtomicU64::new(0),
        }
    }

    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn try_grow(&self, by: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(by).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn shrink(&self, by: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(by))
            });
    }
}

/// The budget temporary files opened on this thread are charged to, and
/// the flag that records a refusal for the operation that entered it.
#[derive(Clone)]
struct Charge {
    budget: Arc<TempBudget>,
    refused: Arc<AtomicBool>,
    /// The furthest byte a write to the WAL may reach.
    wal_limit: u64,
}

thread_local! {
    static CURRENT: RefCell<Option<Charge>> = const { RefCell::new(None) };
}

/// While alive, temporary files opened on this thread count against a
/// budget; [`Entered::refused`] tells whether any write was refused.
pub struct Entered {
    refused: Arc<AtomicBool>,
    previous: Option<Charge>,
}

impl Entered {
    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Charge this thread's temporary files to `budget`, and bound the WAL
/// files it opens to `wal_limit` bytes, until the result drops.
pub fn enter(budget: Arc<TempBudget>, wal_limit: u64) -> Entered {
    let refused = Arc::new(AtomicBool::new(false));
    let charge = Charge {
        budget,
        refused: refused.clone(),
        wal_limit,
    };
    let previous = CURRENT.with(|c| c.borrow_mut().replace(charge));
    Entered { refused, previous }
}

/// Register the VFS once per process; later calls are free.
pub fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED.get_or_init(register_once).clone()
}

/// The default VFS, which does the real work.
static REAL_VFS: OnceLock<usize> = OnceLock::new();

fn real_vfs() -> *mut ffi::sqlite3_vfs {
    *REAL_VFS.get().expect("registered before use") as *mut ffi::sqlite3_vfs
}

/// A bounded file: this header, then the default VFS's own file.
#[repr(C)]
struct TempFile {
    base: ffi::sqlite3_file,
    /// The budget a temporary file is charged to; `None` for a WAL.
    charge: Option<Charge>,
    /// The furthest byte any write may reach.
    max_end: u64,
    /// Bytes this file is charged for: the end of its furthest write.
    charged: u64,
}

/// The header's size, rounded so the real file after it stays aligned.
const HEADER: usize = size_of::<TempFile>().next_multiple_of(16);

fn register_once() -> Result<(), String> {
    // SAFETY: plain FFI calls; the VFS we register is leaked, so it lives
    // as long as the process, as SQLite requires.
    unsafe {
        if ffi::sqlite3_initialize() != ffi::SQLITE_OK {
            return Err("initialising SQLite failed".into());
        }
        let real = ffi::sqlite3_vfs_find(std::ptr::null());
        if real.is_null() {
            return Err("SQLite has no default VFS".into());
        }
        REAL_VFS.get_or_init(|| real as usize);
        let name = format!("{VFS_NAME}\0").into_bytes().leak();
        let mut vfs = *real;
        vfs.pNext = std::ptr::null_mut();
        vfs.zName = name.as_ptr() as *const c_char;
        vfs.szOsFile = (*real).szOsFile + HEADER as c_int;
        vfs.xOpen = Some(open);
        let vfs = Box::leak(Box::new(vfs));
        match ffi::sqlite3_vfs_register(vfs, 0) {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(format!("registering the SQLite VFS failed ({rc})")),
        }
    }
}

fn real_file(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY (for callers): every file of this VFS is HEADER bytes larger
    // than the default VFS's, and the real file starts after the header.
    unsafe { (file as *mut u8).add(HEADER) as *mut ffi::sqlite3_file }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real = real_vfs();
    // SAFETY: SQLite hands us `file` with szOsFile bytes, which we sized
    // as HEADER plus the default VFS's file.
    unsafe {
        let open_real = (*real).xOpen.expect("the default VFS opens files");
        let temporary = name.is_null() || flags & TEMP_KINDS != 0;
        let wal = flags & ffi::SQLITE_OPEN_WAL != 0;
        if !temporary && !wal {
            // The real file sits at the start; SQLite calls its own methods.
            return open_real(real, name, file, flags, out_flags);
        }
        let Some(charge) = CURRENT.with(|c| c.borrow().clone()) else {
            // No budget on this thread: not an owner operation, refuse.
            (*file).pMethods = std::ptr::null();
            return ffi::SQLITE_CANTOPEN;
        };
        let (charge, max_end) = if wal {
            (None, charge.wal_limit)
        } else {
            (Some(charge), u64::MAX)
        };
        let rc = open_real(real, name, real_file(file), flags, out_flags);
        if rc != ffi::SQLITE_OK {
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        std::ptr::write(
            file as *mut TempFile,
            TempFile {
                base: ffi::sqlite3_file {
                    pMethods: &TEMP_METHODS,
                },
                charge,
                max_end,
                charged: 0,
            },
        );
        ffi::SQLITE_OK
    }
}

/// The real file's method table.
unsafe fn methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: an open real file always has its VFS's static method table.
    unsafe { &*(*real_file(file)).pMethods }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: `file` is a TempFile opened by `open`; it is read out once
    // here and never used again after xClose.
    unsafe {
        let rc = (methods(file).xClose.expect("xClose"))(real_file(file));
        let temp = std::ptr::read(file as *mut TempFile);
        if let Some(charge) = &temp.charge {
            charge.budget.shrink(temp.charged);
        }
        rc
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: `file` is a live TempFile; SQLite serialises calls on it.
    unsafe {
        let temp = &mut *(file as *mut TempFile);
        let end = offset.max(0) as u64 + amount.max(0) as u64;
        if end > temp.max_end {
            return ffi::SQLITE_FULL;
        }
        if end > temp.charged {
            if let Some(charge) = &temp.charge
                && !charge.budget.try_grow(end - temp.charged)
            {
                charge.refused.store(true, Ordering::Relaxed);
                return ffi::SQLITE_FULL;
            }
            temp.charged = end;
        }
        (methods(file).xWrite.expect("xWrite"))(real_file(file), data, amount, offset)
    }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: as in `write`.
    unsafe {
        let rc = (methods(file).xTruncate.expect("xTruncate"))(real_file(file), size);
        let temp = &mut *(file as *mut TempFile);
        let size = size.max(0) as u64;
        if rc == ffi::SQLITE_OK && size < temp.charged {
            if let Some(charge) = &temp.charge {
                charge.budget.shrink(temp.charged - size);
            }
            temp.charged = size;
        }
        rc
    }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    if op == FCNTL_SIZE_HINT {
        return ffi::SQLITE_OK;
    }
    // SAFETY: delegating to the real file's method.
    unsafe { (methods(file).xFileControl.expect("xFileControl"))(real_file(file), op, arg) }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: delegating to the real file's method.
    unsafe { (methods(file).xRead.expect("xRead"))(real_file(file), data, amount, offset) }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: delegating to the real file's method.
    unsafe { (methods(file).xSync.expect("xSync"))(real_file(file), flags) }
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: delegating to the real file's method.
    unsafe { (methods(file).xFileSize.expect("xFileSize"))(real_file(file), size) }
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: delegating to the real file's method.
    unsafe { (methods(file).xLock.expect("xLock"))(real_file(file), level) }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: delegating to the real file's method.
    unsafe { (methods(file).xUnlock.expect("xUnlock"))(real_file(file), level) }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: delegating to the real file's method.
    unsafe {
        (methods(file)
            .xCheckReservedLock
            .expect("xCheckReservedLock"))(real_file(file), out)
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: delegating to the real file's method.
    unsafe { (methods(file).xSectorSize.expect("xSectorSize"))(real_file(file)) }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: delegating to the real file's method.
    unsafe {
        (methods(file)
            .xDeviceCharacteristics
            .expect("xDeviceCharacteristics"))(real_file(file))
    }
}

/// Version 1: temporary files need no shared memory, and without xFetch
/// SQLite never memory-maps them.
static TEMP_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_refuses_past_its_limit_and_frees_what_shrinks() {
        let budget = TempBudget::new(100);
        assert!(budget.try_grow(60));
        assert!(!budget.try_grow(41));
        assert!(budget.try_grow(40));
        budget.shrink(70);
        assert_eq!(budget.used(), 30);
        budget.shrink(1000);
        assert_eq!(budget.used(), 0);
    }
}
