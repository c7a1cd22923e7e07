//! An rpath to libtensorflow for tf-run's binaries and tests.
//!
//! Linking itself is tensorflow-sys's job: its build script finds `tensorflow` with pkg-config
//! (`PKG_CONFIG_PATH=<workspace>/build/tflib`, written by `scripts/setup_tflib.sh`; the Makefile
//! sets it and `.cargo/config.toml` makes it the default) and emits the `-l`/`-L` flags. The
//! `-Wl,-rpath` of the `.pc` file, though, only reaches tensorflow-sys's own targets, so this
//! script asks pkg-config for the same directory and gives our binaries and tests an rpath to it:
//! they then run without `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let probe =
        pkg_config::Config::new().cargo_metadata(false).env_metadata(false).probe("tensorflow");
    match probe {
        Ok(lib) => {
            for dir in &lib.link_paths {
                let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
                println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
            }
        }
        // tensorflow-sys linked a library found some other way: run with LD_LIBRARY_PATH.
        Err(_) => println!(
            "cargo:warning=libtensorflow not found through pkg-config: no rpath; run \
             scripts/setup_tflib.sh (see docs/tools/tf-run.md)"
        ),
    }
}
