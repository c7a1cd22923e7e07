//! Output written all or nothing, committed only when the whole run succeeded.
//!
//! A destination is opened as a [`Sink`] as early as possible (before the tool does its work, so
//! that an unusable `-o` or `--report` path fails the run at once), then filled, then committed
//! at the very end:
//!
//! - stdout (`-`, nothing, `/dev/stdout`): the data is held and written at commit;
//! - a regular file or a new one: written to a temporary file `.tf-tmp-<pid>-XXXXXX` in the same
//!   directory and renamed onto the target at commit; a symlink is followed and its target
//!   replaced;
//! - anything else that exists (`/dev/null`, a FIFO, a terminal): opened for writing and written
//!   in place at commit (renaming onto it would replace the device with a file).
//!
//! Temporary files are registered with [`crate::signals`] so that SIGINT, SIGTERM and SIGHUP
//! remove them; those of processes that died otherwise (SIGKILL, power loss) are removed by the
//! next run that writes into the same directory.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tf_io::Encoded;

use crate::signals;

/// The prefix of every temporary file; followed by the writer's pid and a random suffix.
pub(crate) const TEMP_PREFIX: &str = ".tf-tmp-";

/// An open destination.
#[derive(Debug)]
pub(crate) enum Sink {
    /// Standard output.
    Stdout,
    /// A temporary file renamed onto `target` at commit.
    Atomic {
        /// The path the user gave, for messages.
        name: String,
        /// Where the file ends up (a symlink's target).
        target: PathBuf,
        /// The temporary file.
        tmp: tempfile::NamedTempFile,
        /// Its slot in the signal handler's list.
        slot: Option<usize>,
        /// The mode of the file it replaces, kept.
        keep_mode: Option<u32>,
    },
    /// A device or FIFO written in place.
    InPlace {
        /// The path the user gave, for messages.
        name: String,
        /// The open file.
        file: File,
    },
}

/// What was written into a sink, waiting for the commit.
#[derive(Debug)]
pub(crate) struct Pending {
    sink: Sink,
    /// Data not yet written (stdout and in-place sinks write at commit).
    held: Option<Encoded>,
}

/// Whether a path means standard output.
fn is_stdout(p: &Path) -> bool {
    matches!(p.to_str(), Some("-" | "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1"))
}

impl Sink {
    /// Opens the destination `path` names (stdout for `None` or `-`).
    pub(crate) fn open(path: Option<&Path>) -> anyhow::Result<Sink> {
        let p = match path {
            None => return Ok(Sink::Stdout),
            Some(p) if is_stdout(p) => return Ok(Sink::Stdout),
            Some(p) => p,
        };
        let name = p.display().to_string();
        let link = std::fs::symlink_metadata(p);
        let target: PathBuf = match &link {
            Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let to = std::fs::read_link(p).map(|t| t.display().to_string());
                    anyhow::bail!(
                        "{name}: dangling symbolic link (to '{}'): its target does not exist",
                        to.unwrap_or_else(|_| "?".into())
                    );
                }
                Err(e) => return Err(e).with_context(|| format!("{name}: cannot resolve link")),
            },
            _ => p.to_path_buf(),
        };
        match std::fs::metadata(&target) {
            Ok(m) if m.is_dir() => anyhow::bail!("{name}: is a directory"),
            Ok(m) if !m.is_file() => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .with_context(|| format!("{name}: cannot open for writing"))?;
                Ok(Sink::InPlace { name, file })
            }
            existing => {
                let keep_mode = existing.ok().map(|m| m.permissions().mode() & 0o7777);
                let dir = match target.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                remove_stale_temp_files(&dir);
                let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
                // 0666 at creation: the kernel applies the umask, as for any new file.
                let tmp = tempfile::Builder::new()
                    .prefix(&prefix)
                    .permissions(std::fs::Permissions::from_mode(0o666))
                    .tempfile_in(&dir)
                    .map_err(|e| {
                        // tempfile appends the random path it tried; the cause is enough.
                        let text = e.to_string();
                        let cause = text.split(" at path \"").next().unwrap_or_default();
                        anyhow::anyhow!(
                            "{name}: cannot create a file in {}: {cause}",
                            dir.display()
                        )
                    })?;
                let slot = signals::register(tmp.path());
                Ok(Sink::Atomic { name, target, tmp, slot, keep_mode })
            }
        }
    }

    /// Whether binary output here would land on a terminal.
    pub(crate) fn is_terminal(&self) -> bool {
        match self {
            Sink::Stdout => std::io::stdout().is_terminal(),
            Sink::InPlace { file, .. } => file.is_terminal(),
            Sink::Atomic { .. } => false,
        }
    }

    /// Writes `data`: into the temporary file now, or held for the commit; with `in_place_now`
    /// a device or FIFO is written now too (a report, which must fail before the output is
    /// committed).
    pub(crate) fn fill(mut self, data: Encoded, in_place_now: bool) -> anyhow::Result<Pending> {
        match &mut self {
            Sink::Atomic { name, tmp, .. } => {
                data.write_to_fd(tmp.as_file().as_fd())
                    .with_context(|| format!("{name}: write failed"))?;
            }
            Sink::InPlace { name, file } if in_place_now => {
                data.write_to_fd(file.as_fd()).with_context(|| format!("{name}: write failed"))?;
            }
            _ => return Ok(Pending { sink: self, held: Some(data) }),
        }
        Ok(Pending { sink: self, held: None })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Sink::Atomic { slot: Some(slot), .. } = self {
            signals::unregister(*slot);
        }
    }
}

impl Pending {
    /// Replaces what was written (the report of a run that failed at its commit). A device
    /// written already keeps what it got.
    pub(crate) fn refill(&mut self, data: Encoded) -> anyhow::Result<()> {
        use std::io::Seek;
        if let Some(held) = self.held.as_mut() {
            *held = data;
            return Ok(());
        }
        if let Sink::Atomic { name, tmp, .. } = &mut self.sink {
            let f = tmp.as_file_mut();
            f.set_len(0)
                .and_then(|()| f.rewind())
                .and_then(|()| data.write_to_fd(f.as_fd()))
                .with_context(|| format!("{name}: write failed"))?;
        }
        Ok(())
    }

    /// Makes the output visible: renames the temporary file, or writes the held data.
    pub(crate) fn commit(mut self) -> anyhow::Result<()> {
        let held = self.held.take();
        let sink = std::mem::replace(&mut self.sink, Sink::Stdout);
        match sink {
            Sink::Stdout => {
                tf_io::prepare_stdout();
                let stdout = std::io::stdout();
                let mut lock = stdout.lock();
                lock.flush().context("writing to stdout")?;
                if let Some(data) = held {
                    data.write_to_fd(lock.as_fd()).context("writing to stdout")?;
                    release(data);
                }
                Ok(())
            }
            Sink::InPlace { ref name, ref file } => {
                if let Some(data) = held {
                    data.write_to_fd(file.as_fd())
                        .with_context(|| format!("{name}: write failed"))?;
                    release(data);
                }
                Ok(())
            }
            Sink::Atomic { ref name, ref target, ref tmp, keep_mode, .. } => {
                if let Some(mode) = keep_mode {
                    tmp.as_file()
                        .set_permissions(std::fs::Permissions::from_mode(mode))
                        .with_context(|| format!("{name}: cannot set permissions"))?;
                }
                std::fs::rename(tmp.path(), target).with_context(|| format!("{name}: cannot write"))
                // `sink` drops here: the slot is released; the temporary file is gone (renamed),
                // so the NamedTempFile's own clean-up finds nothing to remove.
            }
        }
    }
}

/// Removes `.tf-tmp-<pid>-*` files in `dir` whose process is gone (killed by a signal that
/// cannot be caught). Needs `/proc`; files of other users and of live processes are left alone.
fn remove_stale_temp_files(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split_once('-').and_then(|(p, _)| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = e.path();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() && m.uid() == me => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

/// Lets go of written output without freeing it: commits happen as the process ends, and
/// freeing an encoding of a large graph piece by piece (one allocation per small segment)
/// costs several percent of a whole run for nothing.
fn release(data: tf_io::Encoded) {
    std::mem::forget(data);
}
