//! Temporary files removed on SIGINT, SIGTERM and SIGHUP.
//!
//! The paths of the temporary files a run is writing are kept in a fixed table of pointers to
//! C strings. The handler only reads that table, calls `unlink` (async-signal-safe) on each
//! path, restores the default action and raises the signal again, so the process still ends
//! the way the signal asks (a shell shows 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
//! A signal its parent ignores (`nohup`) stays ignored.

use std::ffi::{c_char, c_int, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

const SLOTS: usize = 8;

static TEMP_FILES: [AtomicPtr<c_char>; SLOTS] = [const { AtomicPtr::new(null_mut()) }; SLOTS];

const SIGNALS: [c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(sig: c_int) {
    for slot in &TEMP_FILES {
        let p = slot.load(Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: `p` is a leaked, never freed, NUL-terminated string; unlink is
            // async-signal-safe.
            unsafe { libc::unlink(p) };
        }
    }
    // SAFETY: signal and raise are async-signal-safe. The signal is blocked while its handler
    // runs, so it is delivered (with the default action: the process ends) when this returns.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Installs the handler for SIGINT, SIGTERM and SIGHUP (once), unless a signal is ignored.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in SIGNALS {
            // SAFETY: plain sigaction calls with zero-initialized structs; the handler only
            // does async-signal-safe things.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
                    || old.sa_sigaction == libc::SIG_IGN
                {
                    continue;
                }
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut new.sa_mask);
                new.sa_flags = libc::SA_RESTART;
                libc::sigaction(sig, &new, std::ptr::null_mut());
            }
        }
    });
}

/// Registers a temporary file for removal on a signal; returns its slot, or `None` when the
/// table is full (then the next run removes the file, see `output`).
pub(crate) fn register(path: &Path) -> Option<usize> {
    install();
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    let raw = c.into_raw();
    for (i, slot) in TEMP_FILES.iter().enumerate() {
        if slot.compare_exchange(null_mut(), raw, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return Some(i);
        }
    }
    // SAFETY: `raw` came from CString::into_raw just above and was not published.
    drop(unsafe { CString::from_raw(raw) });
    None
}

/// Forgets a slot (the file was renamed or removed). The string is leaked on purpose: a
/// handler running on another thread may still be reading it.
pub(crate) fn unregister(slot: usize) {
    TEMP_FILES[slot].store(null_mut(), Ordering::SeqCst);
}
