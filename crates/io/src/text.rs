//! Protobuf text format (pbtxt) for the messages the tools read and write, through the
//! descriptor pool of our own schemas (see `tf_proto::parse_text_format`).

/// Parses pbtxt into `T`; the error is the parser's message (with line and column).
pub fn parse<T: prost::Message + prost::Name + Default>(text: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(text).map_err(|e| format!("text is not UTF-8: {e}"))?;
    tf_proto::parse_text_format(text).map_err(|e| e.to_string())
}

/// Prints `msg` as pbtxt, ending with a newline.
pub fn print<T: prost::Message + prost::Name>(msg: &T) -> Result<String, String> {
    let mut out = tf_proto::to_text_format(msg).map_err(|e| e.to_string())?;
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}
