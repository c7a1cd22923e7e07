//! Memory-mapped input files, remembered so that output can be copied from them in the kernel.
//!
//! Every file mapped through [`map_file`] is recorded with its open handle. When an encoded
//! output references a large payload inside such a mapping, [`crate::Encoded::write_to_fd`]
//! asks the kernel to copy that byte range from the file (`splice`, `copy_file_range` or
//! `sendfile`), instead of faulting the mapping's pages in and copying them through user
//! space. That is what lets a pass-through run at about the speed of `cp`.
//!
//! A mapping is forgotten when its last `Bytes` is dropped: the address range may then be
//! reused by another mapping (or by the heap), and a slice there must never be mistaken for
//! bytes of the old file.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

struct Mapping {
    id: u64,
    base: usize,
    len: usize,
    file: Arc<File>,
}

static MAPPINGS: Mutex<Vec<Mapping>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The owner of a mapping's `Bytes`: unregisters the mapping before it is unmapped.
struct Registered {
    map: memmap2::Mmap,
    id: u64,
}

impl AsRef<[u8]> for Registered {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut all = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|m| m.id != self.id);
    }
}

/// Memory-maps a file read-only (reads it when it cannot be mapped, e.g. a pipe) and records
/// the mapping.
pub fn map_file(path: &Path) -> std::io::Result<Bytes> {
    map_open_file(File::open(path)?)
}

/// [`map_file`] for a file already open (stdin redirected from a file, a memfd).
pub fn map_open_file(file: File) -> std::io::Result<Bytes> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the mapping is read-only; like every tool that maps its input, we assume the
    // file is not truncated by another process while we run.
    match unsafe { memmap2::Mmap::map(&file) } {
        Ok(map) => {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let mapping =
                Mapping { id, base: map.as_ptr() as usize, len: map.len(), file: Arc::new(file) };
            // Registered before the owner exists, so that its Drop always finds the entry.
            MAPPINGS.lock().unwrap_or_else(|e| e.into_inner()).push(mapping);
            Ok(Bytes::from_owner(Registered { map, id }))
        }
        Err(_) => {
            use std::os::unix::fs::FileExt;
            let mut v = vec![0u8; len as usize];
            file.read_exact_at(&mut v, 0)?;
            Ok(Bytes::from(v))
        }
    }
}

/// The mapped file and offset a slice lies in, if any (a slice of a buffer returned by
/// [`map_file`]).
pub fn file_range(s: &[u8]) -> Option<(Arc<File>, u64)> {
    let start = s.as_ptr() as usize;
    let all = MAPPINGS.lock().unwrap_or_else(|e| e.into_inner());
    all.iter()
        .find(|m| start >= m.base && start + s.len() <= m.base + m.len)
        .map(|m| (m.file.clone(), (start - m.base) as u64))
}

/// The CRC-32C of a slice, read through the file when the slice lies in a mapped file, so that
/// checking a checksum does not fault the mapping's pages into the process (which only needs
/// them if it reads the values; writing them out goes through the kernel).
pub fn crc32c(s: &[u8]) -> u32 {
    use std::os::unix::fs::FileExt;
    if let Some((file, mut offset)) = file_range(s).filter(|_| s.len() >= 1 << 16) {
        let mut buf = vec![0u8; 1 << 20];
        let mut crc = 0u32;
        let mut left = s.len();
        while left > 0 {
            let n = left.min(buf.len());
            if file.read_exact_at(&mut buf[..n], offset).is_err() {
                return ::crc32c::crc32c(s);
            }
            crc = ::crc32c::crc32c_append(crc, &buf[..n]);
            offset += n as u64;
            left -= n;
        }
        return crc;
    }
    ::crc32c::crc32c(s)
}
