//! Standard input and output at about the cost of `cat`.
//!
//! A tool in a pipe receives the whole graph through stdin and sends it on through stdout. Read
//! naively (64 KiB pipe buffers, a `Vec` grown by copying, every payload byte written back
//! through user space), each stage of `tf-strip | tf-fold | tf-quant` costs several times what
//! `cat` costs. Here:
//!
//! - stdin that is a regular file (`tool < g.pb`) is memory-mapped like a path argument;
//! - stdin that is a pipe is enlarged (`F_SETPIPE_SZ`) and moved into an anonymous in-memory
//!   file (`memfd`) with `splice`, which the kernel does without a user-space copy; the memfd is
//!   then mapped and registered like an input file (see [`crate::mapped`]), so payloads that the
//!   tool passes through are written out by the kernel (`sendfile`/`splice`), never copied
//!   through the process;
//! - stdout that is a pipe is enlarged too.
//!
//! Anything the kernel refuses (an old kernel, a seccomp filter, a socket on stdin) falls back
//! to plain reads; the bytes are the same either way.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use bytes::Bytes;

/// The pipe buffer size asked for (the kernel caps it at `/proc/sys/fs/pipe-max-size`, 1 MiB
/// by default for unprivileged processes).
const PIPE_BYTES: libc::c_int = 1 << 20;

/// What a file descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FdKind {
    Regular(u64),
    Pipe,
    Other,
}

fn fd_kind(fd: RawFd) -> FdKind {
    // SAFETY: fstat writes into the zeroed struct we own; fd is only inspected.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return FdKind::Other;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FdKind::Regular(st.st_size as u64),
        libc::S_IFIFO => FdKind::Pipe,
        _ => FdKind::Other,
    }
}

/// Asks for a larger buffer on a pipe; a refusal only costs speed.
fn enlarge_pipe(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we do not own only changes the pipe's capacity.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES);
    }
}

/// Enlarges stdout's pipe buffer when stdout is a pipe (call before writing a large output).
pub fn prepare_stdout() {
    if fd_kind(libc::STDOUT_FILENO) == FdKind::Pipe {
        enlarge_pipe(libc::STDOUT_FILENO);
    }
}

/// Reads all of stdin (see the module documentation for how).
pub fn read_stdin_bytes() -> io::Result<Bytes> {
    read_fd(libc::STDIN_FILENO)
}

/// Reads a FIFO, a `/dev/fd/N` of a process substitution or a device to its end (a pipe is
/// spliced like stdin).
pub fn read_stream_file(file: &File) -> io::Result<Bytes> {
    read_fd(file.as_raw_fd())
}

fn read_fd(fd: RawFd) -> io::Result<Bytes> {
    match fd_kind(fd) {
        FdKind::Regular(len) if len > 0 => {
            // The mapping covers the whole file, whatever the shared offset of stdin is:
            // `tool < file` means the file.
            let file = dup_file(fd)?;
            crate::mapped::map_open_file(file)
        }
        FdKind::Pipe => {
            enlarge_pipe(fd);
            match splice_into_memfd(fd)? {
                Some(bytes) => Ok(bytes),
                None => read_all(fd, Vec::new()),
            }
        }
        _ => read_all(fd, Vec::new()),
    }
}

/// A `File` owning a duplicate of `fd` (so that dropping it leaves `fd` open).
fn dup_file(fd: RawFd) -> io::Result<File> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor that the File then owns alone.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor nobody else owns.
    Ok(unsafe { File::from_raw_fd(new) })
}

/// Reads what remains of `fd` after `prefix`.
fn read_all(fd: RawFd, mut prefix: Vec<u8>) -> io::Result<Bytes> {
    let mut f = dup_file(fd)?;
    f.read_to_end(&mut prefix)?;
    Ok(Bytes::from(prefix))
}

/// Moves the whole pipe into a memfd with `splice` and maps it. `None` when the kernel cannot
/// do it before any byte was consumed (the caller then reads normally).
fn splice_into_memfd(fd: RawFd) -> io::Result<Option<Bytes>> {
    // SAFETY: memfd_create takes a NUL-terminated name and returns a descriptor we own.
    let mfd = unsafe { libc::memfd_create(c"tf-tools-stdin".as_ptr(), libc::MFD_CLOEXEC) };
    if mfd < 0 {
        return Ok(None);
    }
    // SAFETY: `mfd` is fresh and owned by this File only.
    let memfd = unsafe { File::from_raw_fd(mfd) };
    let mut offset: libc::loff_t = 0;
    loop {
        // SAFETY: splice between two descriptors we hold; the offset pointer is ours.
        let n = unsafe {
            libc::splice(
                fd,
                std::ptr::null_mut(),
                memfd.as_raw_fd(),
                &mut offset,
                1 << 30,
                libc::SPLICE_F_MOVE,
            )
        };
        if n > 0 {
            continue;
        }
        if n == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EINVAL | libc::ENOSYS | libc::EPERM) if offset == 0 => return Ok(None),
            Some(libc::EINVAL | libc::ENOSYS | libc::EPERM) => {
                // Part of the input is already in the memfd: finish with plain reads after it.
                let mut head = vec![0u8; offset as usize];
                use std::os::unix::fs::FileExt;
                memfd.read_exact_at(&mut head, 0)?;
                return read_all(fd, head).map(Some);
            }
            _ => return Err(e),
        }
    }
    if offset == 0 {
        return Ok(Some(Bytes::new()));
    }
    crate::mapped::map_open_file(memfd).map(Some)
}

/// Writes all of `data` to `fd` with plain `write`s (no buffering layer in between).
pub(crate) fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = data.len().min(1 << 30);
        // SAFETY: writing from a live slice to a descriptor the caller holds.
        let r = unsafe { libc::write(fd, data.as_ptr().cast(), n) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[r as usize..];
    }
    Ok(())
}

/// Copies `len` bytes at `offset` of `file` to `fd` inside the kernel: `splice` into a pipe,
/// `copy_file_range` (then `sendfile`) into a file, `sendfile` into anything else; `pread` and
/// `write` when the kernel refuses all of them. `fd`'s own offset advances as with `write`.
pub(crate) fn copy_range_to_fd(file: &File, offset: u64, len: u64, fd: RawFd) -> io::Result<()> {
    let kind = fd_kind(fd);
    let mut off = offset as libc::loff_t;
    let end = off + len as libc::loff_t;
    let src = file.as_raw_fd();
    // Which system call is tried first; on a refusal before any byte moved, the next one.
    let mut method = match kind {
        FdKind::Pipe => 0,
        FdKind::Regular(_) => 1,
        FdKind::Other => 2,
    };
    while off < end {
        let want = ((end - off) as usize).min(1 << 30);
        // SAFETY: all three calls take descriptors we hold and an offset pointer we own.
        let r = unsafe {
            match method {
                0 => libc::splice(src, &mut off, fd, std::ptr::null_mut(), want, 0),
                1 => libc::copy_file_range(src, &mut off, fd, std::ptr::null_mut(), want, 0),
                2 => libc::sendfile(fd, src, &mut off, want),
                _ => break,
            }
        };
        if r > 0 {
            continue;
        }
        if r == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the input file shrank while it was being copied",
            ));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EINVAL | libc::ENOSYS | libc::EXDEV | libc::EOPNOTSUPP | libc::EPERM) => {
                method = if method == 0 { 2 } else { method + 1 };
            }
            _ => return Err(e),
        }
    }
    if off < end {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; 1 << 20];
        while off < end {
            let n = ((end - off) as usize).min(buf.len());
            file.read_exact_at(&mut buf[..n], off as u64)?;
            write_all_fd(fd, &buf[..n])?;
            off += n as libc::loff_t;
        }
    }
    Ok(())
}
