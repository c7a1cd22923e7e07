//! Reading and writing TensorFlow graphs.
//!
//! - [`read_path`] / [`read_stdin`] accept a binary or text GraphDef, a MetaGraphDef (`.meta`),
//!   or a SavedModel (its directory or `saved_model.pb`) and detect which one they were given
//!   (see [`detect`]). Files are memory-mapped and the large tensor payloads of the decoded
//!   graph are slices of the mapping, not copies.
//! - [`encode_graph`] writes a GraphDef back, binary or pbtxt; binary output references the
//!   input's payloads instead of copying them (see [`write`]).

#![deny(missing_docs)]

mod canonical;
pub mod detect;
mod mapped;
mod read;
mod stream;
pub mod text;
mod wire;
pub mod write;

pub use detect::{Encoding, MessageKind};
pub use mapped::{crc32c, file_range, map_file, map_open_file};
pub use read::{
    not_a_graph, read_bytes, read_path, read_stdin, Loaded, ReadError, ReadErrorKind, ReadOptions,
    DEFAULT_SIGNATURE, DEFAULT_TAG,
};
pub use stream::prepare_stdout;
pub use wire::varint_at;
pub use write::{encode, Encoded, TooLarge};

use tf_proto::tensorflow::GraphDef;

/// Encodes a GraphDef as binary (payloads that are slices of `sources` are not copied) or text.
pub fn encode_graph(
    graph: &GraphDef,
    encoding: Encoding,
    sources: &[bytes::Bytes],
) -> Result<Encoded, String> {
    match encoding {
        Encoding::Binary => encode(graph, sources).map_err(|e| e.to_string()),
        Encoding::Text => Ok(Encoded::from_bytes(text::print(graph)?.into())),
    }
}

/// The binary encoding of `graph` when it came from the binary GraphDef `input`: `input`
/// itself when the graph is unchanged, so that a tool that changes nothing writes its input
/// byte for byte (a GraphDef serialized by Python TensorFlow orders its maps differently from
/// ours; re-encoding it would give equal messages in other bytes). Cheap when the graph
/// changed size; when the sizes are equal, the bytes are compared, then the input is decoded
/// again and compared as a message.
pub fn encode_graph_from(
    graph: &GraphDef,
    input: &bytes::Bytes,
    sources: &[bytes::Bytes],
) -> Result<Encoded, String> {
    let encoded = encode(graph, sources).map_err(|e| e.to_string())?;
    if encoded.len() != input.len() as u64 || encoded.is(input) {
        return Ok(encoded);
    }
    use prost::Message;
    match GraphDef::decode(input.clone()) {
        Ok(original) if original == *graph => Ok(Encoded::from_bytes(input.clone())),
        _ => Ok(encoded),
    }
}

#[cfg(test)]
mod tests;
