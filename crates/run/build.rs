//! Link libtensorflow for tf-run.
//!
//! tensorflow-sys is used with its `private-docs-rs` feature, which makes its build script return
//! before doing anything: it would otherwise probe pkg-config from its own source directory (so a
//! relative `PKG_CONFIG_PATH` such as `build/tflib` is never found) and then try to download a
//! prebuilt libtensorflow, which fails offline with an obscure curl panic. Instead this script:
//!
//! 1. probes pkg-config for `tensorflow`, with every relative `PKG_CONFIG_PATH` entry resolved
//!    against the workspace root (where `make`/`cargo` are run from), then this crate's directory;
//! 2. falls back to `<workspace>/build/tflib/tensorflow.pc` (what `scripts/setup_tflib.sh`
//!    creates by default);
//! 3. links `tensorflow` and `tensorflow_framework` from the directory found and gives the
//!    binaries and tests an rpath to it, so they run without `LD_LIBRARY_PATH`;
//! 4. otherwise stops with one clear message saying how to set things up.

use std::env;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest_dir
        .ancestors()
        .skip(1)
        .find(|d| d.join("Cargo.lock").is_file() || is_workspace_manifest(&d.join("Cargo.toml")))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.clone());

    let default_dir = workspace.join("build/tflib");
    println!("cargo:rerun-if-changed={}", default_dir.join("tensorflow.pc").display());

    // Absolute PKG_CONFIG_PATH, then the default folder as a last resort.
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(p) = env::var_os("PKG_CONFIG_PATH") {
        for entry in env::split_paths(&p) {
            if entry.as_os_str().is_empty() {
                continue;
            }
            if entry.is_absolute() {
                dirs.push(entry);
            } else {
                let in_ws = workspace.join(&entry);
                let in_crate = manifest_dir.join(&entry);
                dirs.push(if in_ws.exists() || !in_crate.exists() { in_ws } else { in_crate });
            }
        }
    }
    dirs.push(default_dir.clone());
    for d in &dirs {
        println!("cargo:rerun-if-changed={}", d.join("tensorflow.pc").display());
    }
    if let Ok(joined) = env::join_paths(&dirs) {
        // The build script is single-threaded; pkg-config reads this from our environment.
        env::set_var("PKG_CONFIG_PATH", joined);
    }

    let probe =
        pkg_config::Config::new().cargo_metadata(false).env_metadata(false).probe("tensorflow");
    let lib_dirs: Vec<PathBuf> = match probe {
        Ok(lib) if !lib.link_paths.is_empty() => lib.link_paths,
        Ok(_) => Vec::new(), // found in a system directory: no -L or rpath needed
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("no details");
            eprintln!(
                "error: libtensorflow not found through pkg-config ({first}).\n\
                 Run `scripts/setup_tflib.sh .venv build/tflib` in the workspace root (it needs a \
                 venv with tensorflow-cpu and the pkg-config tool), then build with \
                 PKG_CONFIG_PATH=<workspace>/build/tflib."
            );
            println!(
                "cargo:warning=libtensorflow not found: run scripts/setup_tflib.sh \
                 (see docs/tools/tf-run.md)"
            );
            std::process::exit(1);
        }
    };
    for dir in &lib_dirs {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    println!("cargo:rustc-link-lib=dylib=tensorflow");
    println!("cargo:rustc-link-lib=dylib=tensorflow_framework");
}

fn is_workspace_manifest(p: &Path) -> bool {
    std::fs::read_to_string(p).map(|s| s.contains("[workspace]")).unwrap_or(false)
}
