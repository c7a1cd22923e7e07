//! CRC-32C with LevelDB's masking, as the checkpoint format stores it.

/// `mask(crc32c(parts...))`: the rotation and offset keep a CRC of data that itself contains CRCs
/// from being degenerate.
pub(crate) fn masked_crc32c(parts: &[&[u8]]) -> u32 {
    let crc = parts.iter().fold(0u32, |c, p| crc32c::crc32c_append(c, p));
    mask(crc)
}

pub(crate) fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}
