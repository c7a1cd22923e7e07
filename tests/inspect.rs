//! tf-inspect against what the fixture script recorded about each model (case.json).

use crate::util::{fixtures, run, saved_model_dirs};

#[test]
fn inspect_json_finds_the_recorded_inputs() {
    let mut checked = 0;
    for case in std::fs::read_dir(fixtures()).unwrap().flatten() {
        let case_json = case.path().join("case.json");
        let Ok(text) = std::fs::read_to_string(&case_json) else { continue };
        let c: serde_json::Value = serde_json::from_str(&text).unwrap();
        let Some(files) = c["files"].as_array() else { continue };
        for f in files.iter().filter_map(|f| f.as_str()) {
            if !(f.ends_with("frozen.pb") || f.ends_with("graph.pb")) {
                continue;
            }
            let path = case.path().join(f);
            let out = run("tf-inspect", &[path.to_str().unwrap(), "--json"], None);
            assert_eq!(out.code, 0, "{}: {}", path.display(), out.stderr);
            let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let names: Vec<&str> =
                s["inputs"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
            for input in c["inputs"].as_object().into_iter().flatten().map(|(k, _)| k) {
                let node = input.split(':').next().unwrap();
                if node.starts_with("serving_default") {
                    continue;
                }
                assert!(
                    names.contains(&node),
                    "{}: input {node} not among {names:?}",
                    path.display()
                );
            }
            assert!(s["nodes"].as_u64().unwrap() > 0);
            checked += 1;
        }
    }
    assert!(checked > 0, "no GraphDef fixture with a case.json");
}

#[test]
fn inspect_savedmodel_lists_tags_and_signatures() {
    for dir in saved_model_dirs() {
        let out = run("tf-inspect", &[dir.to_str().unwrap()], None);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("tag sets: 'serve'"), "{text}");
        assert!(text.contains("signature 'serving_default'"), "{text}");
    }
}
