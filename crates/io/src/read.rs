//! Loading a graph from any of the forms users have: binary or text GraphDef, MetaGraphDef
//! (`.meta`), SavedModel directory or its `saved_model.pb`, a file or stdin.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use tf_proto::tensorflow::{GraphDef, MetaGraphDef, SavedModel, SignatureDef};

use crate::detect::{
    classify_binary, classify_text, looks_like_text, Encoding, MessageKind, Unrecognised,
};
use crate::text;

/// The default SavedModel tag set.
pub const DEFAULT_TAG: &str = "serve";
/// The default SavedModel signature.
pub const DEFAULT_SIGNATURE: &str = "serving_default";

/// What to pick from a SavedModel and how to read the input.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Tag set of the MetaGraphDef to use, comma-separated (default `serve`, or the only one).
    pub tag: Option<String>,
    /// Signature to report (default `serving_default` when present). Naming one that does not
    /// exist is an error.
    pub signature: Option<String>,
}

/// Why an input could not be read; the message names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {kind}")]
pub struct ReadError {
    /// The file, directory or `<stdin>`.
    pub source_name: String,
    /// What went wrong.
    pub kind: ReadErrorKind,
}

/// The kinds of [`ReadError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The OS refused (missing file, permissions...).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Zero bytes.
    #[error("empty input")]
    Empty,
    /// Not protobuf wire format, or cut short.
    #[error("not a valid protobuf message (truncated or corrupt at byte {0})")]
    Malformed(usize),
    /// A protobuf, but not one of the messages the tools read.
    #[error("not a GraphDef, MetaGraphDef or SavedModel")]
    OtherMessage,
    /// Text that does not start like a known message.
    #[error("text does not start like a GraphDef, MetaGraphDef or SavedModel (first field '{0}')")]
    TextUnknown(String),
    /// The decoder rejected the bytes.
    #[error("cannot decode as {kind}: {detail}")]
    Decode {
        /// The message type tried.
        kind: &'static str,
        /// The decoder's words.
        detail: String,
    },
    /// The message decoded but is not a plausible graph.
    #[error("decoded as {kind} but {detail}")]
    Implausible {
        /// The message type tried.
        kind: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A directory without `saved_model.pb`/`.pbtxt`.
    #[error("not a SavedModel directory (no saved_model.pb or saved_model.pbtxt)")]
    NotSavedModelDir,
    /// No MetaGraphDef with the requested tags.
    #[error("no MetaGraphDef with tags '{want}' (available: {available})")]
    NoSuchTag {
        /// Requested tag set.
        want: String,
        /// Tag sets present.
        available: String,
    },
    /// No signature with the requested key.
    #[error("no signature '{want}' (available: {available})")]
    NoSuchSignature {
        /// Requested signature key.
        want: String,
        /// Signature keys present.
        available: String,
    },
    /// A file or folder users mistake for a graph (a TFLite flatbuffer, a SavedModel's Keras
    /// metadata or fingerprint, its variables/ folder): what it is and what to give instead.
    #[error("{0}")]
    NotAGraph(String),
}

/// A TFLite flatbuffer: the file identifier `TFL3` at bytes 4..8, after a root-table offset
/// (little-endian u32, 4-aligned, inside the buffer). A protobuf cannot start that way: its
/// first byte is a field tag, never a multiple of 4 for the fields a graph starts with.
fn is_tflite(b: &[u8]) -> bool {
    let Some(head) = b.get(..8) else { return false };
    let root = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    &head[4..8] == b"TFL3" && root % 4 == 0 && root >= 8 && root < b.len()
}

/// What a file or folder that is not a graph but sits where graphs do is, in words, when it is
/// one of the usual mistakes: a TFLite flatbuffer, a SavedModel's `keras_metadata.pb` or
/// `fingerprint.pb`, its `variables/` folder, or a SavedModel folder without `saved_model.pb`.
/// `content` is the file's bytes, if it is a file.
pub fn not_a_graph(path: &Path, content: &[u8]) -> Option<String> {
    const GIVE_DIR: &str = "give the SavedModel directory that holds it";
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    if is_tflite(content) {
        return Some(
            "a TensorFlow Lite flatbuffer, not a TensorFlow graph (the tools read GraphDefs, \
             MetaGraphDefs and SavedModels)"
                .into(),
        );
    }
    if path.is_file() {
        return match file_name.as_str() {
            "keras_metadata.pb" => {
                Some(format!("Keras metadata of a SavedModel, not a graph; {GIVE_DIR}"))
            }
            "fingerprint.pb" => {
                Some(format!("the fingerprint of a SavedModel, not a graph; {GIVE_DIR}"))
            }
            _ => None,
        };
    }
    if !path.is_dir() {
        return None;
    }
    let has = |f: &str| path.join(f).exists();
    if has("saved_model.pb") || has("saved_model.pbtxt") {
        return None;
    }
    if file_name == "variables" && has("variables.index") {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tail = if parent.join("saved_model.pb").is_file() {
            format!("give the SavedModel directory {}", parent.display())
        } else {
            format!("{} has no saved_model.pb either", parent.display())
        };
        return Some(format!("the variables/ folder of a SavedModel, without its graph; {tail}"));
    }
    if has("variables") || has("keras_metadata.pb") || has("fingerprint.pb") {
        return Some(
            "a SavedModel directory without saved_model.pb: the graph is missing (only the \
             variables or metadata are here)"
                .into(),
        );
    }
    None
}

/// A graph and everything around it that the tools may need.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The graph itself.
    pub graph: GraphDef,
    /// Which message the input held.
    pub kind: MessageKind,
    /// Binary or text.
    pub encoding: Encoding,
    /// The path given (or `<stdin>`), for messages.
    pub source_name: String,
    /// Size of the input in bytes.
    pub input_bytes: u64,
    /// The input buffer; large tensor payloads in `graph` are slices of it. Pass it to the
    /// writer so that they are written without copies.
    pub buffer: Bytes,
    /// For MetaGraphDef and SavedModel inputs: the chosen MetaGraphDef without its graph_def
    /// (which is in `graph`): signatures, collections, saver, object graph.
    pub meta_graph: Option<MetaGraphDef>,
    /// For SavedModels: the directory, if one was given.
    pub saved_model_dir: Option<PathBuf>,
    /// For SavedModels: the tag set of every MetaGraphDef.
    pub tag_sets: Vec<Vec<String>>,
    /// The selected signature, if any.
    pub signature: Option<(String, SignatureDef)>,
}

impl Loaded {
    /// The graph tensors the selected signature outputs, in key order (sparse and composite
    /// outputs by their component tensors); empty without a signature.
    pub fn signature_outputs(&self) -> Vec<String> {
        let Some((_, sig)) = &self.signature else { return Vec::new() };
        sig.outputs.values().flat_map(|i| i.tensor_names()).collect()
    }
}

/// Reads `path` (`-` for stdin, a directory for a SavedModel).
pub fn read_path(path: &Path, opts: &ReadOptions) -> Result<Loaded, ReadError> {
    if path.as_os_str() == "-" {
        return read_stdin(opts);
    }
    let name = path.display().to_string();
    let err = |kind: ReadErrorKind| ReadError { source_name: name.clone(), kind };
    let meta = std::fs::metadata(path).map_err(|e| err(e.into()))?;
    if meta.is_dir() {
        if let Some(what) = not_a_graph(path, &[]) {
            return Err(err(ReadErrorKind::NotAGraph(what)));
        }
        let (file, _) = ["saved_model.pb", "saved_model.pbtxt"]
            .iter()
            .map(|f| (path.join(f), ()))
            .find(|(p, _)| p.is_file())
            .ok_or_else(|| err(ReadErrorKind::NotSavedModelDir))?;
        let mut loaded = read_path(&file, opts)?;
        loaded.saved_model_dir = Some(path.to_path_buf());
        return Ok(loaded);
    }
    // A FIFO, `/dev/fd/N` of a process substitution, a character device or a file whose size
    // the kernel does not know (procfs) is read as a stream; a regular file is mapped.
    let buffer = if meta.is_file() && meta.len() > 0 {
        crate::mapped::map_file(path)
    } else {
        read_stream(path)
    }
    .map_err(|e| err(e.into()))?;
    if let Some(what) = not_a_graph(path, &buffer) {
        return Err(err(ReadErrorKind::NotAGraph(what)));
    }
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let hint = if file_name.starts_with("saved_model.pb") {
        Some(MessageKind::SavedModel)
    } else if file_name.ends_with(".meta") {
        Some(MessageKind::MetaGraphDef)
    } else {
        None
    };
    let mut loaded = read_bytes(buffer, &name, hint, opts)?;
    if loaded.kind == MessageKind::SavedModel {
        loaded.saved_model_dir = path.parent().map(Path::to_path_buf);
    }
    Ok(loaded)
}

/// Reads a file that is not a regular file (or reports size 0) to its end.
fn read_stream(path: &Path) -> std::io::Result<Bytes> {
    crate::stream::read_stream_file(&std::fs::File::open(path)?)
}

/// Reads all of stdin.
pub fn read_stdin(opts: &ReadOptions) -> Result<Loaded, ReadError> {
    let buf = crate::stream::read_stdin_bytes()
        .map_err(|e| ReadError { source_name: "<stdin>".into(), kind: e.into() })?;
    read_bytes(buf, "<stdin>", None, opts)
}

/// Decodes a buffer holding any supported message. `hint` is what the file name suggests.
pub fn read_bytes(
    buffer: Bytes,
    name: &str,
    hint: Option<MessageKind>,
    opts: &ReadOptions,
) -> Result<Loaded, ReadError> {
    let err = |kind: ReadErrorKind| ReadError { source_name: name.to_string(), kind };
    let unrecognised = |u: Unrecognised| {
        err(match u {
            Unrecognised::Empty => ReadErrorKind::Empty,
            Unrecognised::Malformed(at) => ReadErrorKind::Malformed(at),
            Unrecognised::OtherMessage => ReadErrorKind::OtherMessage,
            Unrecognised::TextUnknown(f) => ReadErrorKind::TextUnknown(f),
        })
    };
    if buffer.is_empty() {
        return Err(err(ReadErrorKind::Empty));
    }
    if is_tflite(&buffer) {
        let what = not_a_graph(Path::new(name), &buffer).unwrap_or_default();
        return Err(err(ReadErrorKind::NotAGraph(what)));
    }
    let (encoding, kind) = if looks_like_text(&buffer) {
        (Encoding::Text, classify_text(&buffer).map_err(unrecognised)?)
    } else {
        let detected = classify_binary(&buffer).map_err(unrecognised)?;
        (Encoding::Binary, hint.unwrap_or(detected))
    };
    let decode_err = |detail: String| err(ReadErrorKind::Decode { kind: kind.full_name(), detail });
    let mut loaded = Loaded {
        graph: GraphDef::default(),
        kind,
        encoding,
        source_name: name.to_string(),
        input_bytes: buffer.len() as u64,
        buffer: buffer.clone(),
        meta_graph: None,
        saved_model_dir: None,
        tag_sets: Vec::new(),
        signature: None,
    };
    let mut meta = match kind {
        MessageKind::GraphDef => {
            loaded.graph = match encoding {
                Encoding::Binary => {
                    GraphDef::decode(buffer).map_err(|e| decode_err(e.to_string()))?
                }
                Encoding::Text => text::parse(&buffer).map_err(decode_err)?,
            };
            None
        }
        MessageKind::MetaGraphDef => Some(match encoding {
            Encoding::Binary => {
                MetaGraphDef::decode(buffer).map_err(|e| decode_err(e.to_string()))?
            }
            Encoding::Text => text::parse(&buffer).map_err(decode_err)?,
        }),
        MessageKind::SavedModel => {
            let sm: SavedModel = match encoding {
                Encoding::Binary => {
                    SavedModel::decode(buffer).map_err(|e| decode_err(e.to_string()))?
                }
                Encoding::Text => text::parse(&buffer).map_err(decode_err)?,
            };
            loaded.tag_sets = sm
                .meta_graphs
                .iter()
                .map(|m| m.meta_info_def.as_ref().map(|i| i.tags.clone()).unwrap_or_default())
                .collect();
            Some(pick_meta_graph(sm, &loaded.tag_sets, opts).map_err(err)?)
        }
    };
    if let Some(m) = meta.as_mut() {
        loaded.graph = m.graph_def.take().unwrap_or_default();
        loaded.signature = pick_signature(m, opts).map_err(err)?;
    }
    loaded.meta_graph = meta;
    if let Some(detail) = implausible(&loaded.graph) {
        return Err(err(ReadErrorKind::Implausible { kind: kind.full_name(), detail }));
    }
    Ok(loaded)
}

/// A graph whose nodes lack names or ops came from bytes of another message type that happened
/// to decode.
fn implausible(g: &GraphDef) -> Option<String> {
    let (i, n) = g.node.iter().enumerate().find(|(_, n)| n.name.is_empty() || n.op.is_empty())?;
    Some(if n.name.is_empty() {
        format!("node #{i} has no name")
    } else {
        format!("node '{}' has no op", n.name)
    })
}

fn pick_meta_graph(
    sm: SavedModel,
    tag_sets: &[Vec<String>],
    opts: &ReadOptions,
) -> Result<MetaGraphDef, ReadErrorKind> {
    let describe = || {
        if tag_sets.is_empty() {
            "none".to_string()
        } else {
            tag_sets.iter().map(|t| format!("'{}'", t.join(","))).collect::<Vec<_>>().join(", ")
        }
    };
    let want: Vec<String> = match &opts.tag {
        Some(t) => t.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        None if sm.meta_graphs.len() == 1 => {
            return Ok(sm.meta_graphs.into_iter().next().expect("one meta graph"))
        }
        None => vec![DEFAULT_TAG.to_string()],
    };
    let mut sorted_want = want.clone();
    sorted_want.sort();
    let index = tag_sets.iter().position(|t| {
        let mut t = t.clone();
        t.sort();
        t == sorted_want
    });
    match index {
        Some(i) => Ok(sm.meta_graphs.into_iter().nth(i).expect("index from tag_sets")),
        None => Err(ReadErrorKind::NoSuchTag { want: want.join(","), available: describe() }),
    }
}

fn pick_signature(
    m: &MetaGraphDef,
    opts: &ReadOptions,
) -> Result<Option<(String, SignatureDef)>, ReadErrorKind> {
    let key = opts.signature.as_deref().unwrap_or(DEFAULT_SIGNATURE);
    match m.signature_def.get(key) {
        Some(s) => Ok(Some((key.to_string(), s.clone()))),
        None if opts.signature.is_none() => Ok(None),
        None => Err(ReadErrorKind::NoSuchSignature {
            want: key.to_string(),
            available: if m.signature_def.is_empty() {
                "none".into()
            } else {
                m.signature_def.keys().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ")
            },
        }),
    }
}
