#![no_main]
//! Fuzz target `inspect` (see fuzz/src/targets.rs and docs/fuzzing.md).

use libfuzzer_sys::{fuzz_mutator, fuzz_target, fuzzer_mutate};
use tf_tools_fuzz::targets;

const NAME: &str = "inspect";

fuzz_target!(init: tf_tools_fuzz::write_seeds(NAME), |data: &[u8]| {
    (targets::target(NAME).unwrap().run)(data);
});

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let input = targets::target(NAME).unwrap().input;
    tf_tools_fuzz::custom_mutate(input, data, size, max_size, seed, fuzzer_mutate)
});
