//! TensorFlow protocol buffer messages for the tf-* tools, generated with prost.
//!
//! The schema lives in the repository's `proto/` directory: the TensorFlow 2.21 files that a
//! GraphDef, a SavedModel, a MetaGraphDef and a V2 checkpoint need (see `proto/VERSION`). It is
//! complete for those messages, because prost drops unknown fields on decode. The build compiles
//! it with protox (no system `protoc`) and prost-build, with:
//!
//! - every `map<..>` field as a [`BTreeMap`](std::collections::BTreeMap), so encoding is sorted
//!   by key like TensorFlow's deterministic serializer;
//! - [`TensorProto::tensor_content`] as [`bytes::Bytes`], so decoding from a `Bytes` buffer (for
//!   example a memory-mapped file) slices instead of copying;
//! - enum-typed fields kept as `i32` (unknown values survive a round trip); use prost's generated
//!   getters such as [`TensorProto::dtype()`] for the typed view.
//!
//! All generated types are in [`tensorflow`] (mirroring the protobuf package) and re-exported at
//! the crate root: `tf_proto::GraphDef` is `tf_proto::tensorflow::GraphDef`; nested types and
//! oneofs are in snake_case modules, e.g. [`tensorflow::attr_value::Value`].
//!
//! Text format (`.pbtxt`) goes through prost-reflect with [`descriptor_pool`]; see
//! [`parse_text_format`] and [`to_text_format`]. Attribute helpers are in [`attr`].

use std::sync::OnceLock;

pub mod attr;

/// Generated TensorFlow messages and enums (protobuf package `tensorflow`).
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod tensorflow {
    include!(concat!(env!("OUT_DIR"), "/tensorflow.rs"));
}

pub use attr::AttrError;
pub use tensorflow::*;

/// The serialized `google.protobuf.FileDescriptorSet` of all vendored `.proto` files (including
/// the imported `google/protobuf/any.proto` and `wrappers.proto`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tf_proto_descriptor_set.bin"));

/// The descriptor pool built from [`FILE_DESCRIPTOR_SET`] (built once, then shared).
///
/// Message names are fully qualified, e.g. `"tensorflow.GraphDef"`.
pub fn descriptor_pool() -> &'static prost_reflect::DescriptorPool {
    static POOL: OnceLock<prost_reflect::DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET)
            .expect("tf-proto: embedded descriptor set is valid")
    })
}

/// Error from [`parse_text_format`] / [`to_text_format`].
#[derive(Debug, thiserror::Error)]
pub enum TextFormatError {
    /// The message type is not in [`descriptor_pool`].
    #[error("unknown message type '{0}'")]
    UnknownMessage(String),
    /// The text could not be parsed.
    #[error("text format: {0}")]
    Parse(#[from] prost_reflect::text_format::ParseError),
    /// Converting between the dynamic and the generated message failed.
    #[error("text format: {0}")]
    Decode(#[from] prost::DecodeError),
}

fn message_descriptor(
    full_name: &str,
) -> Result<prost_reflect::MessageDescriptor, TextFormatError> {
    descriptor_pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| TextFormatError::UnknownMessage(full_name.to_string()))
}

/// Parses protobuf text format (TensorFlow's `.pbtxt`, as written by `text_format`) into `M`.
///
/// ```
/// let g: tf_proto::GraphDef = tf_proto::parse_text_format(
///     r#"node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }"#,
/// )
/// .unwrap();
/// assert_eq!(g.node[0].op, "Placeholder");
/// ```
pub fn parse_text_format<M: prost::Message + prost::Name + Default>(
    text: &str,
) -> Result<M, TextFormatError> {
    let desc = message_descriptor(&M::full_name())?;
    let dynamic = prost_reflect::DynamicMessage::parse_text_format(desc, text)?;
    Ok(dynamic.transcode_to::<M>()?)
}

/// Formats `msg` as multi-line protobuf text format (fields in number order, enums by name),
/// readable by TensorFlow's `text_format.Parse`.
pub fn to_text_format<M: prost::Message + prost::Name>(msg: &M) -> Result<String, TextFormatError> {
    let desc = message_descriptor(&M::full_name())?;
    let mut dynamic = prost_reflect::DynamicMessage::new(desc);
    dynamic.transcode_from(msg)?;
    let opts = prost_reflect::text_format::FormatOptions::new().pretty(true);
    Ok(dynamic.to_text_format_with_options(&opts))
}

impl tensorflow::TensorInfo {
    /// The graph tensors this signature entry stands for: its name, a sparse tensor's values,
    /// indices and dense shape, or a composite tensor's components (empty names left out).
    pub fn tensor_names(&self) -> Vec<String> {
        use tensorflow::tensor_info::Encoding;
        let names = match &self.encoding {
            Some(Encoding::Name(n)) => vec![n.clone()],
            Some(Encoding::CooSparse(c)) => vec![
                c.values_tensor_name.clone(),
                c.indices_tensor_name.clone(),
                c.dense_shape_tensor_name.clone(),
            ],
            Some(Encoding::CompositeTensor(c)) => {
                c.components.iter().flat_map(|i| i.tensor_names()).collect()
            }
            None => Vec::new(),
        };
        names.into_iter().filter(|n| !n.is_empty()).collect()
    }
}

#[cfg(test)]
mod tests;
