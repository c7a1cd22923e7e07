//! Damaged inputs never crash a tool: every truncation and byte flip of every fixture either
//! decodes (exit 0) or is refused with one line (exit 2), never a panic or an abort.

use crate::util::{protobuf_fixtures, run};

#[test]
fn damaged_fixtures_never_crash() {
    let mut runs = 0;
    for path in protobuf_fixtures() {
        let bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        let mut variants: Vec<Vec<u8>> = (1..12).map(|k| bytes[..n * k / 12].to_vec()).collect();
        for k in 0..12 {
            let mut v = bytes.clone();
            let at = (k * 7919 + 13) % n;
            v[at] = v[at].wrapping_add(97);
            variants.push(v);
        }
        for v in variants {
            for tool in ["tf-inspect", "tf-convert"] {
                let out = run(
                    tool,
                    &["-", "--json"][..if tool == "tf-inspect" { 2 } else { 1 }],
                    Some(&v),
                );
                assert!(
                    out.code == 0 || out.code == 2,
                    "{tool} on damaged {}: exit {} {}",
                    path.display(),
                    out.code,
                    out.stderr
                );
                assert!(!out.stderr.contains("internal error"), "{tool}: {}", out.stderr);
                if out.code == 2 {
                    assert_eq!(out.stderr.lines().count(), 1, "{tool}: {}", out.stderr);
                    assert!(out.stdout.is_empty());
                }
                runs += 1;
            }
        }
    }
    assert!(runs > 100);
}
