//! `tf-run --calibrate`: run a graph on sample inputs and record, for every activation the
//! full-integer rewrite of `tf-quant int8 --activations` needs, its range and a histogram of
//! |x| (the versioned ranges file of [`tf_quant::ranges`]).
//!
//! Which tensors those are is asked of tf-quant itself ([`tf_quant::activations::
//! calibration_tensors`]), so the two tools agree. Samples come from an npz whose arrays are
//! named after the placeholders and stacked along axis 0; they are run at most
//! [`CHUNK`] rows at a time. Without samples the inputs are generated (seeded), and the file
//! and stderr say that the ranges are good for a smoke run only.

use std::collections::BTreeMap;
use std::path::Path;

use tf_cli::Session;
use tf_quant::ranges::{Accumulator, RangesFile, BINS, FORMAT, VERSION};

use crate::cli::{npz_key_tensor_names, prepare_feeds, InputOptions, LoadedGraph};
use crate::error::{Error, Result};
use crate::npy::read_npz;
use crate::tensor::{fmt_shape, HostTensor};
use crate::tf::{canonical_tensor_name, split_tensor_name};

/// Most sample rows fed in one run.
pub const CHUNK: u64 = 32;

/// Rows `[start, end)` of a tensor along axis 0.
fn rows(t: &HostTensor, start: u64, end: u64) -> Result<HostTensor> {
    let n = t.shape.first().copied().unwrap_or(0).max(1);
    let bytes = t.to_bytes()?;
    let row = bytes.len() / n as usize;
    let mut shape = t.shape.clone();
    shape[0] = end - start;
    HostTensor::from_bytes(t.dtype, shape, &bytes[start as usize * row..end as usize * row])
}

/// Runs the calibration and returns the ranges file.
pub fn calibrate(
    session: &mut Session,
    quiet: bool,
    g: &LoadedGraph,
    samples: Option<&Path>,
    input: &InputOptions,
) -> Result<RangesFile> {
    let tensors = tf_quant::activations::calibration_tensors(&g.def)
        .map_err(|e| Error::invalid(format!("{}: {e}", g.source)))?;
    if tensors.is_empty() {
        session.warn(format!(
            "{}: no Conv2D/MatMul with constant weights: nothing to calibrate",
            g.source
        ));
    }
    let mut acc: BTreeMap<String, Accumulator> =
        tensors.iter().map(|t| (t.clone(), Accumulator::default())).collect();
    let mut batches: Vec<Vec<(String, HostTensor)>> = Vec::new();
    let (source, smoke) = match samples {
        Some(path) => {
            let specs = g.feedable_inputs();
            let mut arrays: Vec<(String, HostTensor)> = Vec::new();
            for (key, t) in read_npz(path)? {
                let name = npz_key_tensor_names(&key).into_iter().find(|c| {
                    matches!(split_tensor_name(c), Ok((node, 0)) if specs.iter().any(|s| s.name == node))
                });
                if let Some(name) = name {
                    arrays.push((name, t));
                }
            }
            for s in specs.iter().filter(|s| !s.optional) {
                if !arrays.iter().any(|(n, _)| split_tensor_name(n).is_ok_and(|(n, _)| n == s.name))
                {
                    return Err(Error::invalid(format!(
                        "{}: no array for placeholder '{}'",
                        path.display(),
                        s.name
                    )));
                }
            }
            let n = arrays.first().and_then(|(_, t)| t.shape.first().copied()).unwrap_or(0);
            if let Some((name, t)) = arrays.iter().find(|(_, t)| t.shape.first() != Some(&n)) {
                return Err(Error::invalid(format!(
                    "{}: '{name}' has shape {}, but the samples are stacked along axis 0 ({n} rows)",
                    path.display(),
                    fmt_shape(&t.shape)
                )));
            }
            if n == 0 {
                return Err(Error::invalid(format!("{}: no samples", path.display())));
            }
            let mut start = 0;
            while start < n {
                let end = (start + CHUNK).min(n);
                let mut b = Vec::new();
                for (name, t) in &arrays {
                    b.push((name.clone(), rows(t, start, end)?));
                }
                batches.push(b);
                start = end;
            }
            (path.display().to_string(), false)
        }
        None => {
            let feeds = prepare_feeds(session, input, &[g])?;
            batches.push(feeds.into_iter().map(|f| (f.name, f.value)).collect());
            session.warn(format!(
                "no samples given: generated inputs (seed {}), smoke run only; the ranges do \
                 not describe real data",
                input.seed
            ));
            (format!("random (seed {})", input.seed), true)
        }
    };
    let mut samples_run = 0u64;
    for b in &batches {
        let feeds: Vec<(&str, &HostTensor)> = b.iter().map(|(n, t)| (n.as_str(), t)).collect();
        samples_run += b.first().and_then(|(_, t)| t.shape.first().copied()).unwrap_or(1);
        // A fed tensor cannot be fetched: its values are the feed's.
        let fed = |t: &str| b.iter().any(|(n, _)| canonical_tensor_name(n) == t);
        let fetch: Vec<&str> = tensors.iter().map(String::as_str).filter(|t| !fed(t)).collect();
        let values = g.model.run(&feeds, &fetch)?;
        let fed_values = b.iter().map(|(n, v)| (canonical_tensor_name(n), v.clone()));
        for (name, v) in fetch.iter().map(|s| s.to_string()).zip(values).chain(fed_values) {
            let (Some(a), Some(f)) = (acc.get_mut(&name), v.to_f64()) else { continue };
            a.add_shape(&v.shape.iter().map(|&d| d as i64).collect::<Vec<_>>());
            a.add(f.iter().map(|&x| x as f32));
        }
    }
    if !quiet {
        eprintln!(
            "calibrated {} tensor(s) on {samples_run} sample(s) from {source}",
            tensors.len()
        );
    }
    Ok(RangesFile {
        format: FORMAT.to_string(),
        version: VERSION,
        source,
        samples: samples_run,
        smoke_run_only: smoke,
        note: smoke.then(|| {
            "smoke run only: ranges from generated inputs, not real data; calibrate with \
             --calibrate SAMPLES.npz before deploying"
                .to_string()
        }),
        bins: BINS,
        tensors: acc.into_iter().map(|(k, a)| (k, a.finish())).collect(),
    })
}
