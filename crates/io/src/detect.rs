//! Which message a file holds, and in which encoding.
//!
//! A binary protobuf does not name its type, so the top-level fields are inspected: a SavedModel
//! starts with a varint schema version (field 1); a MetaGraphDef is the only one with fields 3
//! (SaverDef), 6 or 7; a GraphDef is the only one with a varint field 3 or repeated field 1
//! (nodes). What is left is told apart by the shape of the nested messages (a GraphDef's field 4
//! is a VersionDef of varints, a MetaGraphDef's a map entry of strings). Text format is
//! recognised by its first field name.

use crate::wire::{scan, Field};

/// A message type the tools read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// `tensorflow.GraphDef`
    GraphDef,
    /// `tensorflow.MetaGraphDef` (a TF1 `.meta` file)
    MetaGraphDef,
    /// `tensorflow.SavedModel` (`saved_model.pb`)
    SavedModel,
}

impl MessageKind {
    /// The protobuf full name.
    pub fn full_name(self) -> &'static str {
        match self {
            MessageKind::GraphDef => "tensorflow.GraphDef",
            MessageKind::MetaGraphDef => "tensorflow.MetaGraphDef",
            MessageKind::SavedModel => "tensorflow.SavedModel",
        }
    }
}

/// Binary protobuf or protobuf text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Protobuf wire format.
    Binary,
    /// Protobuf text format (pbtxt).
    Text,
}

/// Why the content was not recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unrecognised {
    Empty,
    Malformed(usize),
    OtherMessage,
    TextUnknown(String),
}

/// Whether the first bytes look like protobuf text format: valid UTF-8 (a character cut at the
/// end of the window is fine) and no control characters besides tab, CR and LF.
pub(crate) fn looks_like_text(b: &[u8]) -> bool {
    let window = &b[..b.len().min(4096)];
    let valid = match std::str::from_utf8(window) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && window.len() == 4096,
    };
    valid && window.iter().all(|&c| c >= 0x20 || matches!(c, b'\t' | b'\n' | b'\r'))
}

/// The first field name of a pbtxt document, skipping blanks and `#` comments.
fn first_text_field(text: &str) -> Option<&str> {
    let body = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let end = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
    Some(&body[..end])
}

pub(crate) fn classify_text(b: &[u8]) -> Result<MessageKind, Unrecognised> {
    let text = String::from_utf8_lossy(&b[..b.len().min(4096)]);
    let first = first_text_field(&text).ok_or(Unrecognised::Empty)?;
    Ok(match first {
        "node" | "library" | "versions" | "version" | "debug_info" => MessageKind::GraphDef,
        "meta_info_def" | "graph_def" | "saver_def" | "collection_def" | "signature_def"
        | "asset_file_def" | "object_graph_def" => MessageKind::MetaGraphDef,
        "saved_model_schema_version" | "meta_graphs" => MessageKind::SavedModel,
        other => return Err(Unrecognised::TextUnknown(other.to_string())),
    })
}

fn has(fields: &[Field], number: u32, wire_type: u8) -> bool {
    fields.iter().any(|f| f.number == number && f.wire_type == wire_type)
}

fn first<'a>(b: &'a [u8], fields: &[Field], number: u32) -> Option<&'a [u8]> {
    fields.iter().find(|f| f.number == number && f.wire_type == 2).map(|f| &b[f.start..f.end])
}

/// The message a binary input holds, as the readers detect it without a hint: `None` when it
/// looks like text format or is no message the tools read. Cheap (one scan of the top-level
/// fields, nothing decoded).
pub fn binary_kind(b: &[u8]) -> Option<MessageKind> {
    if looks_like_text(b) {
        return None;
    }
    classify_binary(b).ok()
}

pub(crate) fn classify_binary(b: &[u8]) -> Result<MessageKind, Unrecognised> {
    if b.is_empty() {
        return Err(Unrecognised::Empty);
    }
    let fields = scan(b).map_err(Unrecognised::Malformed)?;
    let only =
        |allowed: &[(u32, u8)]| fields.iter().all(|f| allowed.contains(&(f.number, f.wire_type)));
    if has(&fields, 1, 0) {
        return if only(&[(1, 0), (2, 2)]) {
            Ok(MessageKind::SavedModel)
        } else {
            Err(Unrecognised::OtherMessage)
        };
    }
    let graph_fields = [(1, 2), (2, 2), (3, 0), (4, 2), (5, 2)];
    let meta_fields = [(1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (7, 2)];
    match (only(&graph_fields), only(&meta_fields)) {
        (false, false) => return Err(Unrecognised::OtherMessage),
        (true, false) => return Ok(MessageKind::GraphDef),
        (false, true) => return Ok(MessageKind::MetaGraphDef),
        (true, true) => {}
    }
    if fields.iter().filter(|f| f.number == 1).count() > 1 {
        return Ok(MessageKind::GraphDef);
    }
    // GraphDef.versions is a VersionDef (varints 1 and 2, bad_consumers 3, which may be
    // packed); MetaGraphDef field 4 is a map entry (key 1 and value 2, both length-delimited).
    // An empty field 4 (`versions {}`) says nothing: decide on the other fields.
    if let Some(sub) = first(b, &fields, 4).filter(|s| !s.is_empty()) {
        if let Ok(sub) = scan(sub) {
            let map_entry =
                sub.iter().all(|f| f.wire_type == 2 && (f.number == 1 || f.number == 2));
            return Ok(if map_entry { MessageKind::MetaGraphDef } else { MessageKind::GraphDef });
        }
    }
    // MetaGraphDef.graph_def is a GraphDef, usually with versions; GraphDef.library is a
    // FunctionDefLibrary whose fields are all repeated messages 1..3.
    if let Some(sub) = first(b, &fields, 2) {
        if let Ok(sub) = scan(sub) {
            if sub.iter().any(|f| f.number == 4 || f.number == 5 || f.wire_type == 0) {
                return Ok(MessageKind::MetaGraphDef);
            }
        }
    }
    // A single field 1: a NodeDef has a string op (field 2); a MetaInfoDef's field 2 is a
    // nested OpList, whose fields are all OpDefs (field 1). An op that is neither an identifier
    // nor an OpList (a node of an unknown op with a stray character) is a node's.
    if let Some(sub) = first(b, &fields, 1) {
        if let Ok(subf) = scan(sub) {
            if let Some(op) = first(sub, &subf, 2) {
                let ident = !op.is_empty()
                    && op.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'>');
                let op_list = !ident
                    && scan(op)
                        .is_ok_and(|ops| ops.iter().all(|f| f.number == 1 && f.wire_type == 2));
                return Ok(if op_list { MessageKind::MetaGraphDef } else { MessageKind::GraphDef });
            }
            return Ok(MessageKind::MetaGraphDef);
        }
    }
    Ok(MessageKind::GraphDef)
}
