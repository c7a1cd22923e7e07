//! The XLA JIT op table: which ops have tf2xla kernels on each device, with the types each
//! kernel allows per attribute, and which inputs must be compile-time constants.
//!
//! `data/xla_ops.json` is written by `scripts/gen_xla_table.py` from TensorFlow 2.21 itself
//! (the KernelDefs registered for `XLA_CPU_JIT`/`XLA_GPU_JIT` once XLA registration has been
//! triggered) and embedded in the binary; `--check` mode of the script, run by
//! this crate's tests when `.venv` exists, keeps it fresh.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use tf_proto::tensorflow::DataType;

const TABLE_JSON: &str = include_str!("../data/xla_ops.json");

/// The XLA JIT device a graph is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Device {
    /// `XLA_CPU_JIT`.
    #[serde(rename = "XLA_CPU_JIT")]
    Cpu,
    /// `XLA_GPU_JIT`.
    #[serde(rename = "XLA_GPU_JIT")]
    Gpu,
}

impl Device {
    /// TensorFlow's name of the JIT device.
    pub fn jit_name(self) -> &'static str {
        match self {
            Device::Cpu => "XLA_CPU_JIT",
            Device::Gpu => "XLA_GPU_JIT",
        }
    }
}

impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Device, String> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" | "xla_cpu_jit" => Ok(Device::Cpu),
            "gpu" | "xla_gpu_jit" => Ok(Device::Gpu),
            _ => Err(format!("unknown device '{s}': expected cpu or gpu")),
        }
    }
}

/// One registered XLA kernel of an op.
#[derive(Debug, Clone, Default)]
pub struct Kernel {
    /// Attribute name → allowed `DataType` values.
    pub constraints: Vec<(String, Vec<i32>)>,
    /// The kernel label (`_kernel` attr) it needs, if any.
    pub label: Option<String>,
}

/// The XLA op table of one TensorFlow version.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// TensorFlow version the table was dumped from.
    pub tensorflow: String,
    cpu: HashMap<String, Vec<Kernel>>,
    gpu: HashMap<String, Vec<Kernel>>,
    const_inputs: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct RawKernel {
    constraints: HashMap<String, Vec<String>>,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
struct RawTable {
    tensorflow: String,
    devices: HashMap<String, HashMap<String, Vec<RawKernel>>>,
    const_inputs: HashMap<String, Vec<String>>,
}

fn convert(raw: HashMap<String, Vec<RawKernel>>) -> HashMap<String, Vec<Kernel>> {
    raw.into_iter()
        .map(|(op, ks)| {
            let ks = ks
                .into_iter()
                .map(|k| {
                    let mut constraints: Vec<(String, Vec<i32>)> = k
                        .constraints
                        .into_iter()
                        .map(|(a, ts)| {
                            let ts = ts
                                .iter()
                                .filter_map(|t| DataType::from_str_name(t).map(|d| d as i32))
                                .collect();
                            (a, ts)
                        })
                        .collect();
                    constraints.sort();
                    Kernel { constraints, label: k.label }
                })
                .collect();
            (op, ks)
        })
        .collect()
}

impl Table {
    /// TensorFlow 2.21's table, decoded from the embedded data on first use.
    ///
    /// # Panics
    /// Never in practice: the embedded JSON is checked by this crate's tests.
    pub fn global() -> &'static Table {
        static GLOBAL: OnceLock<Table> = OnceLock::new();
        GLOBAL.get_or_init(|| Table::from_json(TABLE_JSON).expect("embedded xla_ops.json"))
    }

    /// Parses a table in the format `scripts/gen_xla_table.py` writes.
    pub fn from_json(text: &str) -> Result<Table, serde_json::Error> {
        let mut raw: RawTable = serde_json::from_str(text)?;
        Ok(Table {
            tensorflow: raw.tensorflow,
            cpu: convert(raw.devices.remove("XLA_CPU_JIT").unwrap_or_default()),
            gpu: convert(raw.devices.remove("XLA_GPU_JIT").unwrap_or_default()),
            const_inputs: raw.const_inputs,
        })
    }

    /// The kernels of `op` on `device`; `None` when the op has no XLA kernel there.
    pub fn kernels(&self, device: Device, op: &str) -> Option<&[Kernel]> {
        let map = match device {
            Device::Cpu => &self.cpu,
            Device::Gpu => &self.gpu,
        };
        map.get(op).map(Vec::as_slice)
    }

    /// Number of ops with kernels on `device`.
    pub fn len(&self, device: Device) -> usize {
        match device {
            Device::Cpu => self.cpu.len(),
            Device::Gpu => self.gpu.len(),
        }
    }

    /// The input arguments of `op` that must be compile-time constants.
    pub fn const_inputs(&self, op: &str) -> &[String] {
        self.const_inputs.get(op).map(Vec::as_slice).unwrap_or(&[])
    }
}
