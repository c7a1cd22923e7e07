//! The three spellings of a NodeDef input: `name` (output 0), `name:k` and `^name` (control).

use std::fmt;

/// One parsed entry of `NodeDef.input`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input<'a> {
    /// A data edge from output `port` of node `node`.
    Data {
        /// Producer node name.
        node: &'a str,
        /// Output index.
        port: u32,
    },
    /// A control dependency on `node`.
    Control(&'a str),
}

impl<'a> Input<'a> {
    /// Parses `x`, `x:1` or `^x`. A suffix that is not a number is part of the name, as in
    /// TensorFlow (`a:b` names node `a:b`, output 0).
    pub fn parse(s: &'a str) -> Input<'a> {
        if let Some(name) = s.strip_prefix('^') {
            return Input::Control(name);
        }
        if let Some((name, port)) = s.rsplit_once(':') {
            if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(port) = port.parse() {
                    return Input::Data { node: name, port };
                }
            }
        }
        Input::Data { node: s, port: 0 }
    }

    /// The producer's node name.
    pub fn node(&self) -> &'a str {
        match self {
            Input::Data { node, .. } | Input::Control(node) => node,
        }
    }

    /// Whether this is a control dependency.
    pub fn is_control(&self) -> bool {
        matches!(self, Input::Control(_))
    }
}

impl fmt::Display for Input<'_> {
    /// The canonical spelling: `name` for port 0, `name:k` otherwise, `^name` for control.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Data { node, port: 0 } => write!(f, "{node}"),
            Input::Data { node, port } => write!(f, "{node}:{port}"),
            Input::Control(node) => write!(f, "^{node}"),
        }
    }
}

/// A tensor reference by name and port, as written in `--outputs` lists and signatures
/// (`name`, `name:0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorName {
    /// Node name.
    pub node: String,
    /// Output index.
    pub port: u32,
}

impl TensorName {
    /// Parses `name` or `name:k`; a leading `^` is not allowed here.
    pub fn parse(s: &str) -> TensorName {
        match Input::parse(s) {
            Input::Data { node, port } => TensorName { node: node.to_string(), port },
            Input::Control(node) => TensorName { node: node.to_string(), port: 0 },
        }
    }
}

impl fmt::Display for TensorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(Input::parse("a"), Input::Data { node: "a", port: 0 });
        assert_eq!(Input::parse("a/b:2"), Input::Data { node: "a/b", port: 2 });
        assert_eq!(Input::parse("^c"), Input::Control("c"));
        assert_eq!(Input::parse("f:x"), Input::Data { node: "f:x", port: 0 });
        assert_eq!(Input::parse("a:0").to_string(), "a");
        assert_eq!(Input::parse("a:3").to_string(), "a:3");
        assert_eq!(Input::parse("^a").to_string(), "^a");
        assert_eq!(TensorName::parse("out").to_string(), "out:0");
    }
}
