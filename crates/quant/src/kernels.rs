//! The numeric work: reading float32 weights straight from their little-endian payload
//! (a slice of the input file), writing the quantized payload into a preallocated buffer, and
//! measuring the error the graph will see after dequantization.
//!
//! The int8 loops are the hot path (a 300 MB graph is quantized in a fraction of a second):
//! they work on runs of up to [`BLOCK`] elements with eight independent accumulators, so the
//! compiler vectorizes them, and round without calling `roundf`.

use crate::select::Layout;

/// Elements summed in f32 before the sums are added to the f64 totals.
const BLOCK: usize = 4096;
const LANES: usize = 8;

/// The error of one quantized tensor, as the graph sees it after dequantization.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ErrorStats {
    /// Σ w².
    pub sum_sq: f64,
    /// Σ (w − ŵ)².
    pub sum_sq_err: f64,
    /// max |w − ŵ|.
    pub max_abs_err: f32,
}

impl ErrorStats {
    /// Signal-to-noise ratio in dB, `None` when the error is zero (infinite SNR) or the
    /// signal is.
    pub fn snr_db(&self) -> Option<f64> {
        (self.sum_sq_err > 0.0 && self.sum_sq > 0.0)
            .then(|| 10.0 * (self.sum_sq / self.sum_sq_err).log10())
    }

    pub(crate) fn merge(&mut self, o: &ErrorStats) {
        self.sum_sq += o.sum_sq;
        self.sum_sq_err += o.sum_sq_err;
        self.max_abs_err = self.max_abs_err.max(o.max_abs_err);
    }
}

/// Per-lane f32 accumulators, flushed into f64 every block.
#[derive(Default)]
struct Acc {
    sq: [f32; LANES],
    err: [f32; LANES],
    max: [f32; LANES],
}

impl Acc {
    /// One value and its dequantized counterpart, into lane `lane`.
    #[inline(always)]
    fn add(&mut self, lane: usize, w: f32, d: f32) {
        let e = w - d;
        self.sq[lane] += w * w;
        self.err[lane] += e * e;
        let a = e.abs();
        self.max[lane] = if a > self.max[lane] { a } else { self.max[lane] };
    }

    /// Eight values at once, one per lane (vectorizes).
    #[inline(always)]
    fn add8(&mut self, w: &[f32; LANES], d: &[f32; LANES]) {
        for l in 0..LANES {
            self.add(l, w[l], d[l]);
        }
    }

    fn flush(&mut self, st: &mut ErrorStats) {
        for l in 0..LANES {
            st.sum_sq += self.sq[l] as f64;
            st.sum_sq_err += self.err[l] as f64;
            st.max_abs_err = st.max_abs_err.max(self.max[l]);
        }
        self.sq = [0.0; LANES];
        self.err = [0.0; LANES];
    }
}

/// Whether |w| (given as `a`) is NaN or infinite, branch-free.
#[inline(always)]
fn not_finite(a: f32) -> bool {
    a.is_nan() | (a > f32::MAX)
}

/// Eight little-endian floats.
#[inline(always)]
fn load8(b: &[u8; 4 * LANES]) -> [f32; LANES] {
    #[cfg(target_endian = "little")]
    {
        // SAFETY: [u8; 32] and [f32; 8] have the same size, every bit pattern is a valid f32,
        // and read_unaligned imposes no alignment. On a little-endian target the bytes are
        // the values; this compiles to one unaligned vector load, where assembling each f32
        // from bytes defeats vectorization.
        unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<[f32; LANES]>()) }
    }
    #[cfg(not(target_endian = "little"))]
    {
        std::array::from_fn(|l| {
            f32::from_le_bytes([b[4 * l], b[4 * l + 1], b[4 * l + 2], b[4 * l + 3]])
        })
    }
}

/// `b` as runs of eight floats, and the floats left over.
#[inline(always)]
fn by8(b: &[u8]) -> (impl Iterator<Item = [f32; LANES]> + '_, impl Iterator<Item = f32> + '_) {
    let chunks = b.chunks_exact(4 * LANES);
    let rest = chunks.remainder();
    (chunks.map(|c| load8(c.try_into().expect("chunks_exact"))), floats(rest))
}

/// Iterates over the float values of a little-endian payload.
pub(crate) fn floats(b: &[u8]) -> impl Iterator<Item = f32> + '_ {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// max |w| over a run, or `None` if a value is NaN or infinite.
fn max_abs_run(run: &[u8]) -> Option<f32> {
    let mut lanes = [0.0f32; LANES];
    let mut bad = [false; LANES];
    let (eights, rest) = by8(run);
    for w in eights {
        for l in 0..LANES {
            let a = w[l].abs();
            bad[l] |= not_finite(a);
            lanes[l] = if a > lanes[l] { a } else { lanes[l] };
        }
    }
    for w in rest {
        let a = w.abs();
        bad[0] |= not_finite(a);
        lanes[0] = if a > lanes[0] { a } else { lanes[0] };
    }
    (!bad.iter().any(|b| *b)).then(|| lanes.iter().fold(0.0f32, |a, b| a.max(*b)))
}

/// max |w| per channel, or `None` if a value is NaN or infinite.
pub(crate) fn max_abs(data: &[u8], l: Layout) -> Option<Vec<f32>> {
    let mut m = vec![0.0f32; l.channels];
    if l.inner == 1 {
        // Channels are the last (contiguous) axis: one row of `channels` values at a time.
        let mut bad = [false; LANES];
        let split = l.channels / LANES * LANES;
        let (m8, m_rest) = m.split_at_mut(split);
        for row in data.chunks_exact(4 * l.channels) {
            let (head, tail) = row.split_at(4 * split);
            for (mc, w) in m8.chunks_exact_mut(LANES).zip(by8(head).0) {
                for j in 0..LANES {
                    let a = w[j].abs();
                    bad[j] |= not_finite(a);
                    mc[j] = if a > mc[j] { a } else { mc[j] };
                }
            }
            for (mc, w) in m_rest.iter_mut().zip(floats(tail)) {
                let a = w.abs();
                bad[0] |= not_finite(a);
                *mc = if a > *mc { a } else { *mc };
            }
        }
        if bad.iter().any(|b| *b) {
            return None;
        }
    } else {
        for (k, run) in data.chunks_exact(4 * l.inner).enumerate() {
            let c = k % l.channels;
            m[c] = m[c].max(max_abs_run(run)?);
        }
    }
    Some(m)
}

/// Symmetric narrow-range int8 parameters of a channel: (scale, 1/scale). A channel of zeros
/// (or of values so small that 1/scale would overflow) gets scale 1/127: its values quantize
/// to 0 either way, no scale is ever 0, and `Dequantize` sees a valid range.
pub(crate) fn int8_scale(max_abs: f32) -> (f32, f32) {
    let m = if max_abs >= 127.0 * f32::MIN_POSITIVE { max_abs } else { 1.0 };
    let s = m / 127.0;
    (s, 1.0 / s)
}

/// 1.5 · 2^23: adding it to a float of magnitude < 2^22 rounds it to an integer (ties to
/// even) and leaves that integer, in two's complement, in the low mantissa bits.
const MAGIC: f32 = 12582912.0;

/// One value: its int8 code and what the graph will compute from it. Rounds to nearest with
/// ties away from zero (C's `round`, TFLite's `TfLiteRound`) and clamps to ±127 using float
/// operations only, so the loops vectorize without int conversions or libm calls.
#[inline(always)]
fn q8(w: f32, s: f32, inv: f32) -> (u8, f32) {
    let x = w * inv;
    let x = if x < -127.0 { -127.0 } else { x };
    let x = if x > 127.0 { 127.0 } else { x };
    let even = (x + MAGIC) - MAGIC;
    let d = x - even;
    let up = if x > 0.0 && d == 0.5 { 1.0 } else { 0.0 };
    let down = if x < 0.0 && d == -0.5 { 1.0 } else { 0.0 };
    let r = even + up - down;
    (((r + MAGIC).to_bits() & 0xFF) as u8, r * s)
}

/// Decodes up to [`BLOCK`] little-endian floats into `buf`; returns them.
#[inline(always)]
fn decode<'a>(src: &[u8], buf: &'a mut [f32; BLOCK]) -> &'a [f32] {
    let n = src.len() / 4;
    let (eights, rest) = by8(src);
    for (o, w) in buf.chunks_exact_mut(LANES).zip(eights) {
        o.copy_from_slice(&w);
    }
    for (o, w) in buf[n / LANES * LANES..n].iter_mut().zip(rest) {
        *o = w;
    }
    &buf[..n]
}

/// Adds the error of `d` against `w` to `st`.
fn add_stats(w: &[f32], d: &[f32], st: &mut ErrorStats) {
    let mut acc = Acc::default();
    let (w8, wr) = w.split_at(w.len() / LANES * LANES);
    let (d8, dr) = d.split_at(w8.len());
    for (w, d) in w8.chunks_exact(LANES).zip(d8.chunks_exact(LANES)) {
        acc.add8(w.try_into().expect("chunks_exact"), d.try_into().expect("chunks_exact"));
    }
    for (w, d) in wr.iter().zip(dr) {
        acc.add(0, *w, *d);
    }
    acc.flush(st);
}

/// Scratch space of one worker.
struct Scratch {
    w: Box<[f32; BLOCK]>,
    d: Box<[f32; BLOCK]>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch { w: Box::new([0.0; BLOCK]), d: Box::new([0.0; BLOCK]) }
    }
}

/// Quantizes up to [`BLOCK`] values sharing (s, inv).
fn int8_block_const(
    src: &[u8],
    dst: &mut [u8],
    s: f32,
    inv: f32,
    x: &mut Scratch,
    st: &mut ErrorStats,
) {
    let w = decode(src, &mut x.w);
    let d = &mut x.d[..w.len()];
    for ((w, o), d) in w.iter().zip(dst.iter_mut()).zip(d.iter_mut()) {
        (*o, *d) = q8(*w, s, inv);
    }
    add_stats(w, d, st);
}

/// Quantizes up to [`BLOCK`] values, value j with (s[j], inv[j]).
fn int8_block_row(
    src: &[u8],
    dst: &mut [u8],
    s: &[f32],
    inv: &[f32],
    x: &mut Scratch,
    st: &mut ErrorStats,
) {
    let w = decode(src, &mut x.w);
    let d = &mut x.d[..w.len()];
    for ((((w, o), d), s), inv) in w.iter().zip(dst.iter_mut()).zip(d.iter_mut()).zip(s).zip(inv) {
        (*o, *d) = q8(*w, *s, *inv);
    }
    add_stats(w, d, st);
}

/// Quantizes `data` to int8 into `out` with per-channel `scales` laid out as `l`.
pub(crate) fn int8(data: &[u8], l: Layout, scales: &[(f32, f32)], out: &mut [u8]) -> ErrorStats {
    let mut st = ErrorStats::default();
    let mut x = Scratch::new();
    if l.inner == 1 {
        let s: Vec<f32> = scales.iter().map(|p| p.0).collect();
        let inv: Vec<f32> = scales.iter().map(|p| p.1).collect();
        for (src, dst) in data.chunks_exact(4 * l.channels).zip(out.chunks_exact_mut(l.channels)) {
            for (k, (src, dst)) in src.chunks(4 * BLOCK).zip(dst.chunks_mut(BLOCK)).enumerate() {
                let r = k * BLOCK..k * BLOCK + dst.len();
                int8_block_row(src, dst, &s[r.clone()], &inv[r], &mut x, &mut st);
            }
        }
    } else {
        for (k, (src, dst)) in
            data.chunks_exact(4 * l.inner).zip(out.chunks_exact_mut(l.inner)).enumerate()
        {
            let (s, inv) = scales[k % l.channels];
            for (src, dst) in src.chunks(4 * BLOCK).zip(dst.chunks_mut(BLOCK)) {
                int8_block_const(src, dst, s, inv, &mut x, &mut st);
            }
        }
    }
    st
}

/// min and max of the values (the caller has checked they are finite).
pub(crate) fn min_max(data: &[u8]) -> (f32, f32) {
    floats(data).fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

/// The Graph Transform Tool's `quantize_weights` range: min(values, 0), max(values, 0), and
/// its fix-ups of an empty range.
pub(crate) fn gtt_range(data: &[u8]) -> (f32, f32) {
    let (lo, hi) = min_max(data);
    // As in GTT; with 0 always in the range only the first fix-up can apply.
    let (min, mut max) = (lo.min(0.0), hi.max(0.0));
    if min == max {
        if min.abs() < 0.000001 {
            max = min + 1.0;
        } else if min > 0.0 {
            max = 2.0 * min;
        } else {
            max = min / 2.0;
        }
    }
    (min, max)
}

/// TensorFlow's `Dequantize(MIN_FIRST)` for quint8 on CPU (`QuantizedToFloatStruct`, in
/// float): (step, zero point as a float multiple of the step).
pub(crate) fn min_first_dequantizer(min: f32, max: f32) -> (f32, f32) {
    let step = ((max - min) as f64 / 255.0) as f32;
    (step, (min / step).round())
}

/// quint8 MIN_FIRST quantization as `quantize_weights` does it (TensorFlow's
/// `FloatToQuantized<quint8>`: double arithmetic, ties away from zero), except for the zero
/// point, which is taken from the dequantizer.
///
/// GTT subtracts `round(min · 255/(max−min))` computed in double, while `Dequantize` adds
/// back `round(min / step)` computed in float. When `min · 255/(max−min)` is a half-integer
/// (a range symmetric about 0 gives exactly −127.5) the two round differently and GTT's
/// weights all come back shifted by one step: a bias that ResNet50's outputs amplify to 0.28
/// absolute error. Quantizing against the dequantizer's zero point removes it; everywhere
/// else the bytes are GTT's. Returns the error and whether GTT's zero point would have
/// differed.
pub(crate) fn uint8_min_first(
    data: &[u8],
    min: f32,
    max: f32,
    out: &mut [u8],
) -> (ErrorStats, bool) {
    // `max - min` is a float subtraction in TensorFlow too; the rest is double.
    let steps = 256.0f64;
    let range_adjust = steps / (steps - 1.0);
    let range = (max - min) as f64 * range_adjust;
    let range_scale = steps / range;
    let gtt_zero = (min as f64 * range_scale).round();
    let (step, zero) = min_first_dequantizer(min, max);
    let min_rounded = zero * step;
    let mut st = ErrorStats::default();
    let mut acc = Acc::default();
    for (i, (w, o)) in floats(data).zip(out.iter_mut()).enumerate() {
        let q = ((w as f64 * range_scale).round() - zero as f64).clamp(0.0, 255.0);
        *o = q as u8;
        let d = q as f32 * step + min_rounded;
        acc.add(i % LANES, w, d);
        if i % BLOCK == BLOCK - 1 {
            acc.flush(&mut st);
        }
    }
    acc.flush(&mut st);
    (st, gtt_zero != zero as f64)
}

/// Converts to a 16-bit float format (round to nearest even) with `to`, back with `from`.
pub(crate) fn half_like(
    data: &[u8],
    out: &mut [u8],
    to: impl Fn(f32) -> u16,
    from: impl Fn(u16) -> f32,
) -> ErrorStats {
    let mut st = ErrorStats::default();
    let mut acc = Acc::default();
    for (i, (w, o)) in floats(data).zip(out.chunks_exact_mut(2)).enumerate() {
        let h = to(w);
        o.copy_from_slice(&h.to_le_bytes());
        acc.add(i % LANES, w, from(h));
        if i % BLOCK == BLOCK - 1 {
            acc.flush(&mut st);
        }
    }
    acc.flush(&mut st);
    st
}

/// The Graph Transform Tool's `round_weights`: each value becomes the centre of its bucket
/// among `steps` equal buckets between the tensor's min and max, in f32 as GTT computes it.
/// Unlike GTT the max starts at -inf, not FLT_MIN, so an all-negative tensor keeps its own
/// range (GTT stretches it up to ~0 and wastes buckets).
pub(crate) fn round(data: &[u8], steps: u32, out: &mut [u8]) -> ErrorStats {
    let (mut min, mut max) = min_max(data);
    if min == max {
        if min.abs() < 0.000001 {
            max = min + 1.0;
        } else if min > 0.0 {
            max = 2.0 * min;
        } else {
            min = 2.0 * max;
        }
    }
    let width = (max - min) / steps as f32;
    let mut st = ErrorStats::default();
    let mut acc = Acc::default();
    for (i, (w, o)) in floats(data).zip(out.chunks_exact_mut(4)).enumerate() {
        let bucket = ((w - min) / width).floor() as i32;
        let r = min + width * (bucket as f32 + 0.5);
        o.copy_from_slice(&r.to_le_bytes());
        acc.add(i % LANES, w, r);
        if i % BLOCK == BLOCK - 1 {
            acc.flush(&mut st);
        }
    }
    acc.flush(&mut st);
    st
}
