//! Durable file writes: write a temp file, fsync it, rename it into place
//! and fsync the directory, so a reader sees the old or the new contents,
//! never a torn file, and an acknowledged write survives a crash.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile_in(dir)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    fs::rename(&tmp.0, path)?;
    File::open(dir)?.sync_all()
}

fn tempfile_in(dir: &Path) -> std::io::Result<(std::path::PathBuf, File)> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(std::io::Error::other)?;
    let path = dir.join(format!(".tmp-{}", hex::encode(suffix)));
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((path, file))
}
