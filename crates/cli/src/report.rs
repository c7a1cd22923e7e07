//! The JSON report every tool can write with `--report FILE`.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use tf_io::{Encoding, Loaded};

use crate::ExitStatus;

/// One side (input or output) of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    /// File, directory, `<stdin>` or `<stdout>`.
    pub path: String,
    /// `GraphDef`, `MetaGraphDef` or `SavedModel`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `binary` or `text`.
    pub encoding: String,
    /// Number of nodes in the graph.
    pub nodes: usize,
    /// Number of functions in the library.
    pub functions: usize,
    /// Size in bytes.
    pub bytes: u64,
}

/// The report of one run; tools add their own entries to `changes`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Tool name.
    pub tool: String,
    /// Tool version.
    pub version: String,
    /// What was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Side>,
    /// What was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Side>,
    /// What the tool changed, in its own terms.
    pub changes: Map<String, Value>,
    /// Warnings printed during the run.
    pub warnings: Vec<String>,
    /// Wall time of the whole run in milliseconds.
    pub wall_time_ms: f64,
    /// 0, 1 or 2.
    pub exit_code: u8,
    /// The error line of a run that ended with exit code 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn encoding_name(e: Encoding) -> String {
    match e {
        Encoding::Binary => "binary",
        Encoding::Text => "text",
    }
    .into()
}

impl Report {
    pub(crate) fn new(tool: &str, version: &str) -> Report {
        Report {
            tool: tool.into(),
            version: version.into(),
            input: None,
            output: None,
            changes: Map::new(),
            warnings: Vec::new(),
            wall_time_ms: 0.0,
            exit_code: 0,
            error: None,
        }
    }

    pub(crate) fn set_input(&mut self, l: &Loaded) {
        self.input.replace(Side {
            path: l.source_name.clone(),
            kind: Some(format!("{:?}", l.kind)),
            encoding: encoding_name(l.encoding),
            nodes: l.graph.node.len(),
            functions: l.graph.library.as_ref().map_or(0, |lib| lib.function.len()),
            bytes: l.input_bytes,
        });
    }

    pub(crate) fn set_output(
        &mut self,
        path: Option<&Path>,
        g: &tf_proto::GraphDef,
        bytes: u64,
        encoding: Encoding,
    ) {
        self.output = Some(Side {
            path: path.map_or("<stdout>".into(), |p| p.display().to_string()),
            kind: Some("GraphDef".into()),
            encoding: encoding_name(encoding),
            nodes: g.node.len(),
            functions: g.library.as_ref().map_or(0, |lib| lib.function.len()),
            bytes,
        });
    }

    /// Records a tool-specific entry under `changes`.
    pub fn change(&mut self, key: &str, value: impl Serialize) {
        self.changes.insert(key.into(), serde_json::to_value(value).unwrap_or(Value::Null));
    }

    pub(crate) fn finish(&mut self, wall: Duration, status: ExitStatus) {
        self.wall_time_ms = (wall.as_secs_f64() * 1e6).round() / 1e3;
        self.exit_code = match status {
            ExitStatus::Success => 0,
            ExitStatus::Findings => 1,
            ExitStatus::Error => 2,
        };
    }

    /// The report as pretty JSON with a final newline.
    pub(crate) fn encode(&self) -> anyhow::Result<tf_io::Encoded> {
        let mut json = serde_json::to_string_pretty(self)?;
        json.push('\n');
        Ok(tf_io::Encoded::from_bytes(json.into_bytes().into()))
    }

    /// Prints the report on stderr (`--report -`).
    pub(crate) fn print_stderr(&self) {
        if let Ok(json) = serde_json::to_string_pretty(self) {
            eprintln!("{json}");
        }
    }
}
