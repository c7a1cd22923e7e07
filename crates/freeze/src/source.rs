//! The forms a model to freeze comes in, resolved to a graph and a checkpoint.

use std::path::{Path, PathBuf};

use tf_ckpt::Checkpoint;
use tf_io::{Loaded, ReadOptions};

use crate::FreezeError;

/// A graph and the checkpoint holding its variables.
#[derive(Debug)]
pub struct Source {
    /// The graph (with its MetaGraphDef parts, for SavedModels and `.meta` files).
    pub loaded: Loaded,
    /// The variables.
    pub checkpoint: Checkpoint,
}

fn with_suffix(p: &Path, s: &str) -> PathBuf {
    let mut o = p.as_os_str().to_owned();
    o.push(s);
    PathBuf::from(o)
}

/// A file given as the checkpoint with no `.index` beside it: unless it is laid out as a V1
/// checkpoint (which the checkpoint reader then reads or names), say what it is instead.
fn not_a_checkpoint(path: &Path) -> Result<(), FreezeError> {
    if tf_ckpt::is_v1_table(path) {
        return Ok(());
    }
    let name = path.display();
    Err(FreezeError::Input(match tf_io::read_path(path, &ReadOptions::default()) {
        Ok(l) => format!(
            "{name} is a {}; tf-freeze needs a SavedModel or a checkpoint (this file can be the \
             checkpoint's --graph)",
            l.kind.full_name().trim_start_matches("tensorflow.")
        ),
        Err(e) if matches!(e.kind, tf_io::ReadErrorKind::NotAGraph(_)) => e.to_string(),
        Err(e) => format!("{e} (expected a SavedModel, a checkpoint prefix or a .meta file)"),
    }))
}

/// A path that exists neither as given nor as a checkpoint prefix (`PREFIX.index`,
/// `PREFIX.meta`, V1 shards `PREFIX-00000-of-00002`).
fn missing(path: &Path) -> bool {
    if path.as_os_str() == "-" || path.exists() {
        return false;
    }
    if [".index", ".meta"].iter().any(|s| with_suffix(path, s).exists()) {
        return false;
    }
    let Some(stem) = path.file_name().map(|f| format!("{}-", f.to_string_lossy())) else {
        return true;
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let shard = |e: std::fs::DirEntry| e.file_name().to_string_lossy().starts_with(&stem);
    !std::fs::read_dir(dir).is_ok_and(|mut d| d.any(|e| e.is_ok_and(shard)))
}

impl Source {
    /// Resolves `path`: a SavedModel directory (or its `saved_model.pb`), a checkpoint prefix
    /// with its `.meta`, a `.meta` file, a checkpoint directory (its `checkpoint` file names the
    /// latest), or any checkpoint together with `graph` (a GraphDef file, `-` for stdin).
    pub fn open(
        path: &Path,
        graph: Option<&Path>,
        opts: &ReadOptions,
    ) -> Result<Source, FreezeError> {
        let saved_model_dir = if path.is_dir()
            && (path.join("saved_model.pb").is_file() || path.join("saved_model.pbtxt").is_file())
        {
            Some(path.to_path_buf())
        } else if path
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with("saved_model.pb"))
        {
            path.parent().map(Path::to_path_buf)
        } else {
            None
        };
        if missing(path) {
            return Err(FreezeError::Input(format!(
                "{}: no such file or directory (nor a checkpoint with this prefix)",
                path.display()
            )));
        }
        // A SavedModel folder without its graph, its variables/ folder given alone.
        if saved_model_dir.is_none() && path.is_dir() && !path.join("checkpoint").is_file() {
            if let Some(what) = tf_io::not_a_graph(path, &[]) {
                return Err(FreezeError::Input(format!("{}: {what}", path.display())));
            }
        }
        if let Some(dir) = saved_model_dir {
            let loaded = tf_io::read_path(&dir, opts)?;
            // V2 (`variables.index` + data shards) or, from a TF1 builder given a V1 saver, one
            // V1 table `variables/variables`.
            let vars = dir.join("variables").join("variables");
            let checkpoint = match Checkpoint::open(&vars) {
                Err(tf_ckpt::CkptError::NotFound(_)) => {
                    return Err(FreezeError::Input(format!(
                        "{}: SavedModel has no variables/variables.index (nothing to freeze?)",
                        dir.display()
                    )))
                }
                c => c?,
            };
            let loaded = match graph {
                Some(g) => tf_io::read_path(g, opts)?,
                None => loaded,
            };
            return Ok(Source { loaded, checkpoint });
        }
        let s = path.to_string_lossy();
        let ckpt_path = match s.strip_suffix(".meta") {
            Some(prefix) => PathBuf::from(prefix),
            None => path.to_path_buf(),
        };
        if ckpt_path.is_file() && !with_suffix(&ckpt_path, ".index").is_file() {
            not_a_checkpoint(&ckpt_path)?;
        }
        let checkpoint = Checkpoint::open(&ckpt_path)?;
        let loaded = match graph {
            Some(g) => tf_io::read_path(g, opts)?,
            None => {
                let meta = with_suffix(checkpoint.prefix(), ".meta");
                let saved_model = checkpoint
                    .prefix()
                    .parent()
                    .filter(|v| v.file_name().is_some_and(|f| f == "variables"))
                    .and_then(Path::parent)
                    .filter(|d| d.join("saved_model.pb").is_file());
                if let (false, Some(dir)) = (meta.is_file(), saved_model) {
                    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
                    return Err(FreezeError::Input(format!(
                        "{}: the variables of a SavedModel; give the SavedModel directory {}",
                        checkpoint.prefix().display(),
                        dir.display()
                    )));
                }
                if !meta.is_file() {
                    return Err(FreezeError::Input(format!(
                        "{}: no graph for this checkpoint (no {} file); pass --graph FILE",
                        checkpoint.prefix().display(),
                        meta.display()
                    )));
                }
                tf_io::read_path(&meta, opts)?
            }
        };
        Ok(Source { loaded, checkpoint })
    }
}
