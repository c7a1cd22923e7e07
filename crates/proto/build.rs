//! Compiles the vendored TensorFlow `.proto` files (`../../proto`) without a system `protoc`:
//! protox parses them into a `FileDescriptorSet`, which is written to `OUT_DIR` (for
//! `FILE_DESCRIPTOR_SET` / prost-reflect) and handed to prost-build.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "proto") {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../../proto");
    let root = root.canonicalize().unwrap_or(root);
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    collect(&root, &mut files);
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let rel: Vec<PathBuf> =
        files.iter().map(|f| f.strip_prefix(&root).unwrap().to_path_buf()).collect();

    let fds = protox::Compiler::new([&root])
        .unwrap_or_else(|e| panic!("protox: {e}"))
        .include_source_info(false)
        .include_imports(true)
        .open_files(&rel)
        .unwrap_or_else(|e| panic!("protox: {e}"))
        .file_descriptor_set();

    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::write(out.join("tf_proto_descriptor_set.bin"), prost::Message::encode_to_vec(&fds))
        .expect("writing descriptor set");

    prost_build::Config::new()
        .enable_type_names()
        .btree_map(["."])
        .bytes([".tensorflow.TensorProto.tensor_content"])
        // AttrValue is a oneof whose largest variants (a TensorProto is ~400 bytes, a list
        // ~200) would make every attr that large: a SavedModel with 700 functions then takes
        // 40x its file size in memory. Boxed, an AttrValue is ~56 bytes.
        .boxed(".tensorflow.AttrValue.value.tensor")
        .boxed(".tensorflow.AttrValue.value.list")
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("prost-build: {e}"));
}
