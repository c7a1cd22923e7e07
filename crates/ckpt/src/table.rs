//! The `.index` file: a LevelDB-style sorted table.
//!
//! Layout: data blocks, a metaindex block, an index block and a 48-byte footer (two block
//! handles, padding, magic). Each block is followed by a 5-byte trailer: the compression type
//! (0 none, 1 Snappy) and the masked CRC-32C of the block and type byte. A block is a run of
//! prefix-compressed entries followed by its restart offsets. Every checksum is verified.
//!
//! Nothing read from the file sizes an allocation beyond what the file can hold: data blocks
//! must follow one another without overlap (as every table writer lays them out), a Snappy
//! block may not claim more than Snappy's largest possible expansion of its bytes, and the
//! keys and values rebuilt from prefix compression may total at most [`max_decoded`] bytes.

use crate::crc::masked_crc32c;

const FOOTER_LEN: usize = 48;
pub(crate) const MAGIC: u64 = 0xdb47_7524_8b80_fb57;

/// Snappy's largest expansion: a 3-byte copy tag yields at most 64 bytes.
const SNAPPY_MAX_RATIO: usize = 22;

/// The most bytes of keys and values the table of a `file_len`-byte index may decode to:
/// 64 MiB plus 16 times the file. Prefix compression lets one short entry repeat a long key,
/// so without a budget a 1 MB file could rebuild terabytes of keys; real checkpoint indexes
/// decode to about their own size.
pub(crate) fn max_decoded(file_len: usize) -> usize {
    file_len.saturating_mul(16).saturating_add(64 << 20)
}

/// Why the table could not be read: a message for `CkptError::Index`.
pub(crate) type TableError = String;

/// (key, value) rows in table order.
pub(crate) type Rows = Vec<(Vec<u8>, Vec<u8>)>;

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, TableError> {
    tf_io::varint_at(b, pos).ok_or_else(|| "truncated or malformed varint".into())
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
        1 => {
            let claimed = snap::raw::decompress_len(contents)
                .map_err(|e| format!("{what} block at offset {start}: bad Snappy data: {e}"))?;
            if claimed > contents.len().saturating_mul(SNAPPY_MAX_RATIO).saturating_add(64) {
                return Err(format!(
                    "{what} block at offset {start}: {size} Snappy bytes claim to expand to \
                     {claimed} bytes, more than Snappy can encode"
                ));
            }
            snap::raw::Decoder::new()
                .decompress_vec(contents)
                .map_err(|e| format!("{what} block at offset {start}: bad Snappy data: {e}"))
        }
        k => Err(format!("{what} block at offset {start} has unknown compression type {k}")),
    }
}

/// The (key, value) entries of a block, in order.
///
/// `budget` is what is left of [`max_decoded`]: every key and value rebuilt is charged to it.
fn entries(b: &[u8], what: &str, budget: &mut usize) -> Result<Rows, TableError> {
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
        let cost = (shared + unshared).saturating_add(value_end - key_end);
        *budget = budget.checked_sub(cost).ok_or_else(|| {
            bad("keys and values decode to more bytes than the index can hold (prefix compression bomb)")
        })?;
        key.truncate(shared);
        key.extend_from_slice(&b[pos..key_end]);
        out.push((key.clone(), b[key_end..value_end].to_vec()));
        pos = value_end;
    }
    Ok(out)
}

/// Every (key, value) of the table, in key order.
pub(crate) fn read_table(file: &[u8]) -> Result<Rows, TableError> {
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
    let mut budget = max_decoded(file.len());
    let mut out = Vec::new();
    let mut next_free = 0u64;
    for (_, value) in entries(&index_block, "index", &mut budget)? {
        let mut p = 0;
        let h = handle(&value, &mut p)?;
        if h.offset < next_free {
            return Err(format!(
                "data block at offset {} overlaps the previous one (ends at {next_free})",
                h.offset
            ));
        }
        next_free = h.offset.saturating_add(h.size).saturating_add(5);
        let data = block(file, h, "data")?;
        out.extend(entries(&data, "data", &mut budget)?);
    }
    Ok(out)
}
