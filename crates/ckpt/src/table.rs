//! The `.index` file: a LevelDB-style sorted table (tf-facts §2.2).
//!
//! Layout: data blocks, a metaindex block, an index block and a 48-byte footer (two block
//! handles, padding, magic). Each block is followed by a 5-byte trailer: the compression type
//! (0 none, 1 Snappy) and the masked CRC-32C of the block and type byte. A block is a run of
//! prefix-compressed entries followed by its restart offsets. Every checksum is verified.

use crate::crc::masked_crc32c;

const FOOTER_LEN: usize = 48;
pub(crate) const MAGIC: u64 = 0xdb47_7524_8b80_fb57;

/// Why the table could not be read: a message for `CkptError::Index`.
pub(crate) type TableError = String;

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, TableError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

#[derive(Debug, Clone, Copy)]
struct Handle {
    offset: u64,
    size: u64,
}

fn handle(b: &[u8], pos: &mut usize) -> Result<Handle, TableError> {
    Ok(Handle { offset: varint(b, pos)?, size: varint(b, pos)? })
}

/// Reads and verifies one block; returns its contents (decompressed).
fn block(file: &[u8], h: Handle, what: &str) -> Result<Vec<u8>, TableError> {
    let start = usize::try_from(h.offset).map_err(|_| "block offset overflows")?;
    let size = usize::try_from(h.size).map_err(|_| "block size overflows")?;
    let end = start
        .checked_add(size)
        .and_then(|e| e.checked_add(5))
        .filter(|e| *e <= file.len())
        .ok_or_else(|| {
        format!("{what} block at offset {start} runs past the end of the file (truncated?)")
    })?;
    let contents = &file[start..start + size];
    let kind = file[start + size];
    let stored = u32::from_le_bytes(file[start + size + 1..end].try_into().expect("4 bytes"));
    let computed = masked_crc32c(&[contents, &[kind]]);
    if stored != computed {
        return Err(format!(
            "{what} block at offset {start} has a bad checksum (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    match kind {
        0 => Ok(contents.to_vec()),
        1 => snap::raw::Decoder::new()
            .decompress_vec(contents)
            .map_err(|e| format!("{what} block at offset {start}: bad Snappy data: {e}")),
        k => Err(format!("{what} block at offset {start} has unknown compression type {k}")),
    }
}

/// The (key, value) entries of a block, in order.
fn entries(b: &[u8], what: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>, TableError> {
    let bad = |m: &str| format!("{what} block is malformed: {m}");
    if b.len() < 4 {
        return Err(bad("shorter than its restart count"));
    }
    let restarts = u32::from_le_bytes(b[b.len() - 4..].try_into().expect("4 bytes")) as usize;
    let data_end = restarts
        .checked_mul(4)
        .and_then(|r| b.len().checked_sub(4 + r))
        .ok_or_else(|| bad("restart array larger than the block"))?;
    let mut out = Vec::new();
    let mut key: Vec<u8> = Vec::new();
    let mut pos = 0;
    while pos < data_end {
        let shared = varint(b, &mut pos).map_err(|e| bad(&e))? as usize;
        let unshared = varint(b, &mut pos).map_err(|e| bad(&e))? as usize;
        let value_len = varint(b, &mut pos).map_err(|e| bad(&e))? as usize;
        if shared > key.len() {
            return Err(bad("shared key prefix longer than the previous key"));
        }
        let key_end = pos
            .checked_add(unshared)
            .filter(|e| *e <= data_end)
            .ok_or_else(|| bad("key past the end"))?;
        let value_end = key_end
            .checked_add(value_len)
            .filter(|e| *e <= data_end)
            .ok_or_else(|| bad("value past the end"))?;
        key.truncate(shared);
        key.extend_from_slice(&b[pos..key_end]);
        out.push((key.clone(), b[key_end..value_end].to_vec()));
        pos = value_end;
    }
    Ok(out)
}

/// Every (key, value) of the table, in key order.
pub(crate) fn read_table(file: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, TableError> {
    if file.len() < FOOTER_LEN {
        return Err(format!(
            "file is {} bytes, shorter than the 48-byte footer (truncated?)",
            file.len()
        ));
    }
    let footer = &file[file.len() - FOOTER_LEN..];
    let magic = u64::from_le_bytes(footer[40..].try_into().expect("8 bytes"));
    if magic != MAGIC {
        return Err("bad magic number in the footer (truncated, or not a checkpoint index)".into());
    }
    let mut pos = 0;
    let _metaindex = handle(footer, &mut pos)?;
    let index = handle(footer, &mut pos)?;
    let index_block = block(file, index, "index")?;
    let mut out = Vec::new();
    for (_, value) in entries(&index_block, "index")? {
        let mut p = 0;
        let h = handle(&value, &mut p)?;
        let data = block(file, h, "data")?;
        out.extend(entries(&data, "data")?);
    }
    Ok(out)
}
