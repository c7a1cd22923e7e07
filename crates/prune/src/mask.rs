//! Keep masks: tfmot's k rule with a deterministic tie-break, block pooling and N:M groups.
//!
//! Everything here works on plain `f32` slices so that it is testable without a graph.

/// How many of `n` elements (or blocks) are kept at sparsity `s`: tfmot's
/// `k = max(round(n·(1−s)), 1)`, with `round` half to even as `tf.round` does.
pub fn keep_count(n: usize, s: f64) -> usize {
    if n == 0 {
        return 0;
    }
    let k = (n as f64 * (1.0 - s)).round_ties_even();
    (k.max(1.0) as usize).min(n)
}

/// The `k` largest magnitudes of `scores` are kept; ties are broken by position (the earlier
/// element wins), so exactly `k` are kept and the result never depends on sort stability.
pub fn top_k(scores: &[f32], k: usize) -> Vec<bool> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by(|&a, &b| scores[b].abs().total_cmp(&scores[a].abs()).then(a.cmp(&b)));
    let mut keep = vec![false; scores.len()];
    for &i in idx.iter().take(k) {
        keep[i] = true;
    }
    keep
}

/// A tensor seen as a matrix for block pooling: the last axis is the columns, every other
/// axis is folded into the rows (rank 1 is one row).
pub fn as_matrix(shape: &[i64]) -> (usize, usize) {
    match shape.split_last() {
        None => (1, 1),
        Some((&c, rest)) => (rest.iter().product::<i64>().max(1) as usize, c.max(0) as usize),
    }
}

/// Block of each element, for blocks of `r`×`c` over the matrix view; returns the number of
/// blocks and, per element, its block index (row-major blocks, partial blocks at the edges).
pub fn block_index(shape: &[i64], r: usize, c: usize) -> (usize, Vec<usize>) {
    let (rows, cols) = as_matrix(shape);
    let bc = cols.div_ceil(c);
    let nb = rows.div_ceil(r) * bc;
    let mut of = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for j in 0..cols {
            of.push((i / r) * bc + j / c);
        }
    }
    (nb, of)
}

/// Average magnitude of each block (partial blocks average over the elements they have, as
/// SAME average pooling does).
pub fn block_scores(values: &[f32], nb: usize, of: &[usize]) -> Vec<f32> {
    let mut sum = vec![0f64; nb];
    let mut cnt = vec![0u32; nb];
    for (v, &b) in values.iter().zip(of) {
        sum[b] += f64::from(v.abs());
        cnt[b] += 1;
    }
    sum.iter()
        .zip(&cnt)
        .map(|(s, &c)| if c == 0 { 0.0 } else { (s / f64::from(c)) as f32 })
        .collect()
}

/// N:M sparsity along `axis`: in every group of `m` consecutive elements along that axis the
/// `n` largest magnitudes are kept (ties: the earlier element). A last, shorter group keeps at
/// most `n` as well.
pub fn n_of_m(values: &[f32], shape: &[i64], axis: usize, n: usize, m: usize) -> Vec<bool> {
    let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    let mut keep = vec![true; values.len()];
    if dims.is_empty() || axis >= dims.len() {
        return keep;
    }
    let len = dims[axis];
    let stride: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    let mut group = Vec::with_capacity(m);
    for o in 0..outer {
        for i in 0..stride {
            let base = o * len * stride + i;
            let mut start = 0;
            while start < len {
                let end = (start + m).min(len);
                group.clear();
                group.extend((start..end).map(|j| base + j * stride));
                let scores: Vec<f32> = group.iter().map(|&e| values[e]).collect();
                let kept = top_k(&scores, n.min(group.len()));
                for (&e, k) in group.iter().zip(kept) {
                    keep[e] = k;
                }
                start = end;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_rule_matches_tfmot() {
        assert_eq!(keep_count(4, 0.5), 2);
        assert_eq!(keep_count(10, 0.99), 1); // round(0.1) = 0 -> at least 1
        assert_eq!(keep_count(10, 0.0), 10);
        assert_eq!(keep_count(5, 0.5), 2); // 2.5 rounds half to even
        assert_eq!(keep_count(7, 0.5), 4); // 3.5 -> 4
        assert_eq!(keep_count(0, 0.5), 0);
    }

    #[test]
    fn ties_keep_exactly_k_earliest_first() {
        // tfmot keeps 3 of these at s=0.5 (ties at the threshold); we keep exactly 2.
        let keep = top_k(&[0.1, 0.5, 0.3, 0.3], 2);
        assert_eq!(keep, vec![false, true, true, false]);
        let keep = top_k(&[1.0, -1.0, 1.0, -1.0], 2);
        assert_eq!(keep, vec![true, true, false, false]);
    }

    #[test]
    fn blocks_pool_average_magnitude() {
        // 2x4 matrix, blocks 1x2 -> 4 blocks.
        let v = [1.0, -1.0, 0.1, 0.1, 0.5, 0.4, 3.0, 0.0];
        let (nb, of) = block_index(&[2, 4], 1, 2);
        assert_eq!(nb, 4);
        assert_eq!(of, vec![0, 0, 1, 1, 2, 2, 3, 3]);
        let s = block_scores(&v, nb, &of);
        assert_eq!(top_k(&s, 2), vec![true, false, false, true]);
        // partial blocks at the edges of a 3x3 matrix with 2x2 blocks.
        let (nb, of) = block_index(&[3, 3], 2, 2);
        assert_eq!(nb, 4);
        assert_eq!(of, vec![0, 0, 1, 0, 0, 1, 2, 2, 3]);
    }

    #[test]
    fn two_of_four_along_an_axis() {
        // shape [8, 1]: one line of 8 along axis 0 -> two groups of 4.
        let v = [4.0, 1.0, 3.0, 2.0, 0.0, 0.0, 0.0, 5.0];
        let keep = n_of_m(&v, &[8, 1], 0, 2, 4);
        assert_eq!(keep, vec![true, false, true, false, true, false, false, true]);
        // along axis 1 of [2, 4]
        let v = [1.0, 2.0, 3.0, 4.0, 4.0, 3.0, 2.0, 1.0];
        let keep = n_of_m(&v, &[2, 4], 1, 2, 4);
        assert_eq!(keep, vec![false, false, true, true, true, true, false, false]);
        // a short last group keeps at most n
        let keep = n_of_m(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[6], 0, 2, 4);
        assert_eq!(keep, vec![false, false, true, true, true, true]);
    }
}
