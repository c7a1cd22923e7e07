//! Seeded fuzzing on stable: every fuzz target of `fuzz/` runs a few thousand structure-aware
//! mutations of the fixtures in-process, with a fixed seed. A panic (or output the tools cannot
//! read back) fails the test, naming the target, the seed, the case and the seed file, and the
//! input is saved under `target/fuzz-smoke/` for replay (`FUZZ_SMOKE_REPLAY=target:file`).
//!
//! The mutators and targets are the files the libFuzzer targets use (`fuzz/src/`), compiled in
//! here. The smoke profile holds back the edits that reach known open problems (see
//! `Profile::Smoke`); the fuzzers (`make fuzz`) use everything.
//!
//! `FUZZ_SMOKE_CASES` sets the number of cases per target (default 2000 in release builds, 150
//! in debug builds), `FUZZ_SMOKE_SEED` the seed, `FUZZ_SMOKE_PROFILE=full` lifts the smoke
//! profile's restrictions, `FUZZ_SMOKE_FIRST` skips the cases before it.

#[path = "../fuzz/src/mutate.rs"]
#[allow(dead_code)]
mod mutate;
#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use mutate::{Profile, Rng};

/// Seed files larger than this are left to the fuzzers (time).
const MAX_SEED_BYTES: usize = 40_000;

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn name_hash(s: &str) -> u64 {
    s.bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn smoke(name: &str) {
    let target = targets::target(name).expect("target");
    if let Ok(replay) = std::env::var("FUZZ_SMOKE_REPLAY") {
        if let Some(file) = replay.strip_prefix(&format!("{name}:")) {
            let data = std::fs::read(file).expect("replay file");
            println!("{name}: accepted {}", (target.run)(&data));
        }
        return;
    }
    let cases =
        env_u64("FUZZ_SMOKE_CASES").unwrap_or(if cfg!(debug_assertions) { 100 } else { 2000 });
    let seed = env_u64("FUZZ_SMOKE_SEED").unwrap_or(20_261_203);
    // FUZZ_SMOKE_PROFILE=full: everything the fuzzers do, known open problems included.
    let profile = match std::env::var("FUZZ_SMOKE_PROFILE").as_deref() {
        Ok("full") => Profile::Full,
        _ => Profile::Smoke,
    };
    let seeds = targets::seeds(target.input, MAX_SEED_BYTES);
    assert!(seeds.len() >= 3, "{name}: too few seed fixtures ({})", seeds.len());
    let out_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-smoke");
    let (mut mutated, mut accepted, mut failures) = (0u64, 0u64, Vec::new());
    // FUZZ_SMOKE_TRACE=1: each input is written to target/fuzz-smoke/<target>-current.bin
    // before it runs, so that one which aborts the process (out of memory, stack overflow) can
    // be replayed.
    let trace = std::env::var_os("FUZZ_SMOKE_TRACE").is_some();
    if trace {
        std::fs::create_dir_all(&out_dir).expect("target/fuzz-smoke");
    }
    let (mut slowest, mut slowest_case) = (Duration::ZERO, 0);
    let started = Instant::now();
    // FUZZ_SMOKE_FIRST=k: start at case k (with FUZZ_SMOKE_TRACE, to extract one case).
    let first = env_u64("FUZZ_SMOKE_FIRST").unwrap_or(0);
    for case in first..cases {
        let mut rng = Rng::new(seed ^ name_hash(name) ^ case.wrapping_mul(0x9E37_79B9));
        let (seed_name, base) = &seeds[rng.below(seeds.len())];
        let mut data = base.clone();
        for _ in 0..1 + rng.below(3) {
            if let Some(m) = targets::mutate(target.input, &data, &mut rng, profile) {
                data = m;
            }
        }
        mutated += u64::from(data != *base);
        if trace {
            eprintln!("fuzz smoke {name}: case {case} from {seed_name}");
            std::fs::write(out_dir.join(format!("{name}-current.bin")), &data).expect("trace");
        }
        let t0 = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(&data)));
        if t0.elapsed() > slowest {
            (slowest, slowest_case) = (t0.elapsed(), case);
        }
        accepted += u64::from(matches!(outcome, Ok(true)));
        if let Err(e) = outcome {
            let _ = std::fs::create_dir_all(&out_dir);
            let file = out_dir.join(format!("{name}-{seed}-{case}.bin"));
            let _ = std::fs::write(&file, &data);
            failures.push(format!(
                "target {name}, seed {seed}, case {case} (from {seed_name}): {} [input: {}]",
                panic_message(e.as_ref()),
                file.display()
            ));
        }
    }
    eprintln!(
        "fuzz smoke {name}: {cases} cases ({mutated} mutated, {accepted} accepted) in {:.1} s, \
         slowest case {} ({:.0} ms)",
        started.elapsed().as_secs_f64(),
        slowest_case,
        slowest.as_secs_f64() * 1e3
    );
    assert!(
        mutated * 10 >= (cases - first.min(cases)) * 8,
        "{name}: the mutator changed only {mutated} of {cases} inputs"
    );
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

macro_rules! smoke_tests {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            smoke(stringify!($name));
        }
    )*};
}

smoke_tests!(
    graphdef, pbtxt, savedmodel, checkpoint, strip, fold, quant, prune, xla, freeze, inspect
);

/// Every target sees every file of `fuzz/regressions/<target>/` (crashes the fuzzers found, all
/// fixed). Files ending in `.manual` (see `fuzz/regressions/README.md`) are left out.
#[test]
fn regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut failures = Vec::new();
    let mut runs = 0;
    for t in targets::TARGETS {
        let Ok(files) = std::fs::read_dir(dir.join(t.name)) else { continue };
        for f in files.flatten() {
            if f.path().extension().is_some_and(|e| e == "manual") {
                continue;
            }
            let data = std::fs::read(f.path()).unwrap();
            runs += 1;
            if let Err(e) = catch_unwind(AssertUnwindSafe(|| (t.run)(&data))) {
                failures.push(format!("{}: {}", f.path().display(), panic_message(e.as_ref())));
            }
        }
    }
    assert!(runs > 0, "no reproducers under {}", dir.display());
    assert!(failures.is_empty(), "{} failing:\n{}", failures.len(), failures.join("\n"));
}
