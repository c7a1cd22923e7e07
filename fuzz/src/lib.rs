//! Fuzzing support for the tf-* tools: structure-aware mutators ([`mutate`]) and the targets
//! ([`targets`]). The same two files are compiled into the stable smoke test
//! (`tests/fuzz_smoke.rs`), so a case found here can be replayed there.

pub mod mutate;
pub mod targets;

/// The libFuzzer custom mutator body shared by every target: a structure-aware edit of the
/// input when it decodes, libFuzzer's own byte mutation otherwise (and now and then, to explore
/// the decoders themselves).
pub fn custom_mutate(
    input: targets::Input,
    data: &mut [u8],
    size: usize,
    max_size: usize,
    seed: u32,
    byte_level: impl FnOnce(&mut [u8], usize, usize) -> usize,
) -> usize {
    let mut rng = mutate::Rng::new(u64::from(seed));
    if !rng.one_in(10) {
        if let Some(out) = targets::mutate(input, &data[..size], &mut rng, mutate::Profile::Full) {
            if out.len() <= max_size {
                data[..out.len()].copy_from_slice(&out);
                return out.len();
            }
        }
    }
    byte_level(data, size, max_size)
}

/// Writes the seed corpus of target `name` (fixtures of at most 160 KB) into the directory named
/// by `TF_FUZZ_SEEDS` when that directory is empty or missing; called from each target's init,
/// before libFuzzer reads its corpus (`make fuzz` sets the variable).
pub fn write_seeds(name: &str) {
    let Some(dir) = std::env::var_os("TF_FUZZ_SEEDS") else { return };
    let dir = std::path::PathBuf::from(dir);
    if std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(false) {
        return;
    }
    let target = targets::target(name).expect("target");
    std::fs::create_dir_all(&dir).expect("corpus directory");
    for (file, bytes) in targets::seeds(target.input, 160_000) {
        std::fs::write(dir.join(file), bytes).expect("seed");
    }
}
