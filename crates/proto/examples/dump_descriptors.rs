//! Writes `tf_proto::FILE_DESCRIPTOR_SET` (a serialized `google.protobuf.FileDescriptorSet`) to
//! the path given as the only argument, or to stdout. Used by `scripts/check_proto_schema.py`:
//!
//! ```text
//! cargo run -q -p tf-proto --example dump_descriptors -- /tmp/tf_proto.bin
//! .venv/bin/python scripts/check_proto_schema.py /tmp/tf_proto.bin
//! ```

use std::io::Write;

fn main() -> std::io::Result<()> {
    match std::env::args_os().nth(1) {
        Some(path) => std::fs::write(path, tf_proto::FILE_DESCRIPTOR_SET),
        None => std::io::stdout().write_all(tf_proto::FILE_DESCRIPTOR_SET),
    }
}
