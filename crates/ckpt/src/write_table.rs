//! Writes the `.index` file: the sorted table [`table`](crate::table) reads.
//!
//! Keys must be added in strictly increasing byte order. Entries are prefix-compressed against
//! the previous key, with a restart point (an entry stored whole, its offset listed at the end
//! of the block) every 16 entries; a block is closed once it reaches 256 KiB. Every block is
//! stored uncompressed (type 0, as TensorFlow's bundle writer does) and followed by its
//! trailer: the type byte and the masked CRC-32C of block and type. Then come an empty
//! metaindex block, the index block (one entry per data block: the block's last key and its
//! handle, a restart point at every entry) and the 48-byte footer.

use crate::crc::masked_crc32c;
use crate::table::MAGIC;
use prost::encoding::encode_varint;

const BLOCK_SIZE: usize = 256 << 10;
const RESTART_INTERVAL: usize = 16;

/// One block being built.
#[derive(Default)]
struct Block {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    last_key: Vec<u8>,
    since_restart: usize,
    entries: usize,
}

impl Block {
    fn add(&mut self, key: &[u8], value: &[u8], interval: usize) {
        let shared = if self.since_restart < interval && self.entries > 0 {
            self.last_key.iter().zip(key).take_while(|(a, b)| a == b).count()
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        };
        encode_varint(shared as u64, &mut self.buf);
        encode_varint((key.len() - shared) as u64, &mut self.buf);
        encode_varint(value.len() as u64, &mut self.buf);
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// The block's bytes: entries, restart offsets, restart count (an empty block has the one
    /// restart at 0, as LevelDB writes it).
    fn finish(mut self) -> Vec<u8> {
        if self.restarts.is_empty() {
            self.restarts.push(0);
        }
        for r in &self.restarts {
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.buf.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.buf
    }
}

/// Builds a table in memory (an index holds one small entry per tensor).
pub(crate) struct TableBuilder {
    out: Vec<u8>,
    block: Block,
    index: Block,
    last_key: Option<Vec<u8>>,
}

impl TableBuilder {
    pub(crate) fn new() -> TableBuilder {
        TableBuilder {
            out: Vec::new(),
            block: Block::default(),
            index: Block::default(),
            last_key: None,
        }
    }

    /// Adds an entry; `key` must sort after the previous one.
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) {
        debug_assert!(self.last_key.as_deref().is_none_or(|k| k < key), "keys out of order");
        self.block.add(key, value, RESTART_INTERVAL);
        self.last_key = Some(key.to_vec());
        if self.block.buf.len() >= BLOCK_SIZE {
            self.flush();
        }
    }

    /// Appends `contents` with its trailer; returns its handle, encoded.
    fn put_block(&mut self, contents: &[u8]) -> Vec<u8> {
        let offset = self.out.len() as u64;
        self.out.extend_from_slice(contents);
        self.out.push(0);
        let crc = masked_crc32c(&[contents, &[0]]);
        self.out.extend_from_slice(&crc.to_le_bytes());
        let mut handle = Vec::new();
        encode_varint(offset, &mut handle);
        encode_varint(contents.len() as u64, &mut handle);
        handle
    }

    fn flush(&mut self) {
        if self.block.entries == 0 {
            return;
        }
        let block = std::mem::take(&mut self.block);
        let last = block.last_key.clone();
        let handle = self.put_block(&block.finish());
        self.index.add(&last, &handle, 1);
    }

    /// The whole file.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.flush();
        let meta = self.put_block(&Block::default().finish());
        let index = std::mem::take(&mut self.index).finish();
        let index = self.put_block(&index);
        let mut footer = Vec::with_capacity(48);
        footer.extend_from_slice(&meta);
        footer.extend_from_slice(&index);
        footer.resize(40, 0);
        footer.extend_from_slice(&MAGIC.to_le_bytes());
        self.out.extend_from_slice(&footer);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_read_back_with_every_key() {
        for n in [0usize, 1, 15, 16, 17, 5000] {
            let mut b = TableBuilder::new();
            let rows: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
                .map(|i| (format!("key/{i:08}").into_bytes(), vec![i as u8; 64 + i % 300]))
                .collect();
            for (k, v) in &rows {
                b.add(k, v);
            }
            let file = b.finish();
            assert_eq!(crate::table::read_table(&file).unwrap(), rows, "{n} rows");
        }
    }
}
