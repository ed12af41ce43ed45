//! Programs the tests and benchmarks start: where the repository is, and
//! making a child die with whoever started it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root, from the test's or benchmark's crate.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("scripts/test").exists())
        .expect("run from inside the repository")
        .to_path_buf()
}

/// Make `command`'s process die with the thread that spawns it, however
/// the tests end (a test process killed, a panic that skips `Drop`).
pub fn dies_with_us(command: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches no shared state.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}
