//! Memory-mapped input files, remembered so that output can be copied from them in the kernel.
//!
//! Every file mapped through [`map_file`] is recorded with its open handle. When an encoded
//! output references a large payload inside such a mapping, [`crate::Encoded::write_to`] asks
//! the kernel to copy that byte range from the file (`std::io::copy` uses `copy_file_range`,
//! `sendfile` or `splice`), instead of faulting the mapping's pages in and copying them through
//! user space. That is what lets a pass-through run at about the speed of `cp`.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

struct Mapping {
    base: usize,
    len: usize,
    file: Arc<File>,
}

static MAPPINGS: Mutex<Vec<Mapping>> = Mutex::new(Vec::new());

/// Memory-maps a file read-only (reads it when it cannot be mapped, e.g. a pipe) and records
/// the mapping.
pub fn map_file(path: &Path) -> std::io::Result<Bytes> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the mapping is read-only; like every tool that maps its input, we assume the
    // file is not truncated by another process while we run.
    match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => {
            let bytes = Bytes::from_owner(m);
            if let Ok(mut all) = MAPPINGS.lock() {
                all.push(Mapping {
                    base: bytes.as_ptr() as usize,
                    len: bytes.len(),
                    file: Arc::new(file),
                });
            }
            Ok(bytes)
        }
        Err(_) => {
            let mut v = Vec::with_capacity(len as usize);
            (&file).read_to_end(&mut v)?;
            Ok(Bytes::from(v))
        }
    }
}

/// The mapped file and offset a slice lies in, if any (a slice of a buffer returned by
/// [`map_file`]).
pub fn file_range(s: &[u8]) -> Option<(Arc<File>, u64)> {
    let start = s.as_ptr() as usize;
    let all = MAPPINGS.lock().ok()?;
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
