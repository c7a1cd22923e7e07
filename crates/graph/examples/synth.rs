//! Writes a synthetic GraphDef (binary) to stdout, for benchmarks:
//! `cargo run --release -p tf-graph --example synth -- identity-chain 100000 > chain.pb`.
//! Shapes: see `tf_graph::synth::SHAPES`.

use std::io::Write;

use prost::Message;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = format!("usage: synth SHAPE N   (shapes: {})", tf_graph::synth::SHAPES.join(", "));
    let (Some(shape), n) = (args.first(), args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Some(g) = tf_graph::synth::generate(shape, n) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    std::io::stdout().lock().write_all(&g.encode_to_vec()).expect("stdout");
}
