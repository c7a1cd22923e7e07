//! Writing output all or nothing.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tf_io::Encoded;

/// Writes `data` to `path` (stdout for `None` or `-`).
///
/// A regular file (or a new one) is written to a temporary file in the same directory and
/// renamed into place, so a failed run leaves no partial output; a symlink is followed and its
/// target replaced. Anything else that exists (`/dev/null`, a FIFO, a terminal) is written in
/// place: renaming onto it would replace the device with a file.
pub(crate) fn write_atomically(path: Option<&Path>, data: &Encoded) -> anyhow::Result<()> {
    let p = match path {
        None => return write_stdout(data),
        Some(p) if p.as_os_str() == "-" => return write_stdout(data),
        Some(p) => p,
    };
    let name = p.display();
    match std::fs::metadata(p) {
        Ok(m) if !m.is_file() && !m.is_dir() => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("{name}: cannot open for writing"))?;
            data.write_to(&mut f).with_context(|| format!("{name}: write failed"))
        }
        existing => {
            let target: PathBuf = if p.is_symlink() { std::fs::canonicalize(p)? } else { p.into() };
            let dir = match target.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let mut tmp = tempfile::Builder::new()
                .prefix(".tf-tmp-")
                .tempfile_in(&dir)
                .with_context(|| format!("{name}: cannot create a file in {}", dir.display()))?;
            data.write_to(tmp.as_file_mut()).with_context(|| format!("{name}: write failed"))?;
            // Temporary files are private (0600); keep an existing file's mode, else 0644.
            let mode = existing.map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644);
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("{name}: cannot set permissions"))?;
            tmp.persist(&target)
                .map_err(|e| e.error)
                .with_context(|| format!("{name}: cannot write"))?;
            Ok(())
        }
    }
}

fn write_stdout(data: &Encoded) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    data.write_to(&mut lock).context("writing to stdout")?;
    lock.flush().context("writing to stdout")
}
