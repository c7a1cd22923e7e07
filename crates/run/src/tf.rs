//! A small safe wrapper over TensorFlow's C API (via `tensorflow-sys`): import a serialized
//! GraphDef, open a session, run it with feeds and fetches named `node:port`, and move tensors
//! between [`HostTensor`] and `TF_Tensor`.
//!
//! Every C object is owned by an RAII type whose `Drop` frees it, so error paths never leak.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::ptr;

use tensorflow_sys as sys;

use crate::dtype::{dtype_code_name, DType};
use crate::error::{one_line, Error, Result};
use crate::tensor::{Data, HostTensor};

// The only functions declared here rather than taken from tensorflow-sys: its bindings (made
// from TF 2.13's C API) type a data type as the Rust enum `TF_DataType`, whose last variant is
// `TF_UINT64 = 23`. TF 2.21 also has the float8 types (24-28), int4/uint4 (29, 30), int2/uint2
// (31, 32) and float4_e2m1fn (33): a returned enum holding one of those is undefined behaviour,
// and none of them can be passed in. Of the functions tf-run calls, these three take or return a
// data type; they are declared with a plain integer instead, the C ABI being the same (a C enum).
extern "C" {
    #[link_name = "TF_TensorType"]
    fn tf_tensor_type_raw(t: *const sys::TF_Tensor) -> c_int;
    #[link_name = "TF_OperationOutputType"]
    fn tf_operation_output_type_raw(out: sys::TF_Output) -> c_int;
    #[link_name = "TF_AllocateTensor"]
    fn tf_allocate_tensor_raw(
        dtype: c_int,
        dims: *const i64,
        num_dims: c_int,
        len: usize,
    ) -> *mut sys::TF_Tensor;
}

/// The TensorFlow runtime version string (e.g. "2.21.0").
pub fn version() -> String {
    // SAFETY: TF_Version returns a static NUL-terminated string.
    unsafe { cstr_to_string(sys::TF_Version()) }
}

unsafe fn cstr_to_string(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("name {s:?} contains a NUL byte")))
}

/// Owned `TF_Status`.
struct Status(*mut sys::TF_Status);

impl Status {
    fn new() -> Status {
        // SAFETY: plain constructor; never returns NULL.
        Status(unsafe { sys::TF_NewStatus() })
    }

    /// `Ok(())` when the status is OK, otherwise the TF error with its message.
    fn check(&self, context: &str) -> Result<()> {
        // SAFETY: self.0 is a live status.
        let code = unsafe { sys::TF_GetCode(self.0) };
        if code == sys::TF_Code::TF_OK {
            return Ok(());
        }
        // SAFETY: TF_Message returns a pointer valid while the status lives.
        let message = unsafe { cstr_to_string(sys::TF_Message(self.0)) };
        Err(Error::Tf {
            context: context.to_string(),
            code: code_name(code),
            message: one_line(&message),
        })
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        // SAFETY: created by TF_NewStatus, freed once.
        unsafe { sys::TF_DeleteStatus(self.0) }
    }
}

fn code_name(code: sys::TF_Code) -> &'static str {
    use sys::TF_Code::*;
    match code {
        TF_OK => "OK",
        TF_CANCELLED => "CANCELLED",
        TF_UNKNOWN => "UNKNOWN",
        TF_INVALID_ARGUMENT => "INVALID_ARGUMENT",
        TF_DEADLINE_EXCEEDED => "DEADLINE_EXCEEDED",
        TF_NOT_FOUND => "NOT_FOUND",
        TF_ALREADY_EXISTS => "ALREADY_EXISTS",
        TF_PERMISSION_DENIED => "PERMISSION_DENIED",
        TF_UNAUTHENTICATED => "UNAUTHENTICATED",
        TF_RESOURCE_EXHAUSTED => "RESOURCE_EXHAUSTED",
        TF_FAILED_PRECONDITION => "FAILED_PRECONDITION",
        TF_ABORTED => "ABORTED",
        TF_OUT_OF_RANGE => "OUT_OF_RANGE",
        TF_UNIMPLEMENTED => "UNIMPLEMENTED",
        TF_INTERNAL => "INTERNAL",
        TF_UNAVAILABLE => "UNAVAILABLE",
        TF_DATA_LOSS => "DATA_LOSS",
    }
}

/// Owned `TF_ImportGraphDefOptions`.
struct ImportOptions(*mut sys::TF_ImportGraphDefOptions);

impl Drop for ImportOptions {
    fn drop(&mut self) {
        // SAFETY: created by TF_NewImportGraphDefOptions, freed once.
        unsafe { sys::TF_DeleteImportGraphDefOptions(self.0) }
    }
}

/// Owned `TF_SessionOptions`.
struct SessionOptions(*mut sys::TF_SessionOptions);

impl Drop for SessionOptions {
    fn drop(&mut self) {
        // SAFETY: created by TF_NewSessionOptions, freed once.
        unsafe { sys::TF_DeleteSessionOptions(self.0) }
    }
}

/// Owned `TF_Graph`.
pub struct Graph(*mut sys::TF_Graph);

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: created by TF_NewGraph; sessions using it are dropped first (see `Model`).
        unsafe { sys::TF_DeleteGraph(self.0) }
    }
}

/// A resolved `node:port` in a graph.
#[derive(Clone, Copy)]
struct Port {
    oper: *mut sys::TF_Operation,
    index: c_int,
}

impl Graph {
    /// Import a serialized GraphDef (binary protobuf) into a new graph.
    pub fn import(graph_def: &[u8]) -> Result<Graph> {
        // SAFETY: constructors; wrapped immediately so they are freed on every path.
        let graph = Graph(unsafe { sys::TF_NewGraph() });
        let opts = ImportOptions(unsafe { sys::TF_NewImportGraphDefOptions() });
        let status = Status::new();
        let buf = sys::TF_Buffer {
            data: graph_def.as_ptr().cast(),
            length: graph_def.len(),
            data_deallocator: None,
        };
        // SAFETY: all pointers are live; TF copies what it needs from `buf`.
        unsafe { sys::TF_GraphImportGraphDef(graph.0, &buf, opts.0, status.0) };
        status.check("GraphDef import")?;
        Ok(graph)
    }

    fn operation(&self, name: &str) -> Result<Option<*mut sys::TF_Operation>> {
        let c = cstring(name)?;
        // SAFETY: graph is live; the name is NUL-terminated.
        let op = unsafe { sys::TF_GraphOperationByName(self.0, c.as_ptr()) };
        Ok((!op.is_null()).then_some(op))
    }

    /// Whether an operation with this name exists.
    pub fn has_operation(&self, name: &str) -> bool {
        matches!(self.operation(name), Ok(Some(_)))
    }

    /// Number of outputs of an operation (`None` if it does not exist).
    pub fn num_outputs(&self, name: &str) -> Option<usize> {
        let op = self.operation(name).ok().flatten()?;
        // SAFETY: op belongs to this live graph.
        Some(unsafe { sys::TF_OperationNumOutputs(op) }.max(0) as usize)
    }

    /// Type code of output `port` of operation `name`.
    pub fn output_type_code(&self, name: &str, port: usize) -> Option<i32> {
        let op = self.operation(name).ok().flatten()?;
        // SAFETY: op belongs to this live graph; port is checked against its output count.
        unsafe {
            if port >= sys::TF_OperationNumOutputs(op).max(0) as usize {
                return None;
            }
            Some(tf_operation_output_type_raw(sys::TF_Output { oper: op, index: port as c_int }))
        }
    }

    /// Resolve `node` or `node:port`; `graph` names the graph in errors.
    fn resolve(&self, tensor: &str, graph: &str) -> Result<Port> {
        let (node, port) = split_tensor_name(tensor)?;
        let not_found =
            || Error::TensorNotFound { name: tensor.to_string(), graph: graph.to_string() };
        let oper = self.operation(node)?.ok_or_else(not_found)?;
        // SAFETY: oper belongs to this live graph.
        let n = unsafe { sys::TF_OperationNumOutputs(oper) };
        if port >= n.max(0) as usize {
            return Err(Error::invalid(format!(
                "tensor '{tensor}' not found in {graph}: node '{node}' has {n} output(s)"
            )));
        }
        Ok(Port { oper, index: port as c_int })
    }
}

/// Split `node:port` (port defaults to 0), spelled as tf-graph parses node inputs. A control
/// input (`^x`) or an empty node name is rejected.
pub fn split_tensor_name(name: &str) -> Result<(&str, usize)> {
    match tf_graph::Input::parse(name) {
        tf_graph::Input::Data { node, port } if !node.is_empty() => Ok((node, port as usize)),
        _ => Err(Error::invalid(format!("bad tensor name {name:?}"))),
    }
}

/// Canonical `node:port` form.
pub fn canonical_tensor_name(name: &str) -> String {
    match split_tensor_name(name) {
        Ok((node, port)) => format!("{node}:{port}"),
        Err(_) => name.to_string(),
    }
}

/// Owned `TF_Session`.
struct Session(*mut sys::TF_Session);

impl Drop for Session {
    fn drop(&mut self) {
        let status = Status::new();
        // SAFETY: created by TF_NewSession; closed then deleted once. Errors are ignored here
        // (nothing useful can be done about them in a destructor).
        unsafe {
            sys::TF_CloseSession(self.0, status.0);
            sys::TF_DeleteSession(self.0, status.0);
        }
    }
}

/// Owned `TF_Tensor`. `tstrings` is set for string tensors created here, whose elements must be
/// deallocated with `TF_StringDealloc` before the tensor itself.
struct Tensor {
    ptr: *mut sys::TF_Tensor,
    tstrings: usize,
}

impl Drop for Tensor {
    fn drop(&mut self) {
        // SAFETY: ptr was created by TF_AllocateTensor or returned by TF_SessionRun and is
        // deleted once. For string tensors we created, each of the `tstrings` elements was
        // initialised with TF_StringInit.
        unsafe {
            if self.tstrings > 0 {
                let base = sys::TF_TensorData(self.ptr) as *mut sys::TF_TString;
                if !base.is_null() {
                    for i in 0..self.tstrings {
                        sys::TF_StringDealloc(base.add(i));
                    }
                }
            }
            sys::TF_DeleteTensor(self.ptr);
        }
    }
}

impl Tensor {
    fn from_host(t: &HostTensor) -> Result<Tensor> {
        let dims: Vec<i64> = t
            .shape
            .iter()
            .map(|&d| i64::try_from(d).map_err(|_| Error::invalid("dimension too large")))
            .collect::<Result<_>>()?;
        let dtype = t.dtype();
        if let Data::Str(strings) = &t.data {
            let len = strings.len() * std::mem::size_of::<sys::TF_TString>();
            // SAFETY: dims is a live array of dims.len() values.
            let ptr = unsafe {
                tf_allocate_tensor_raw(dtype.code(), dims.as_ptr(), dims.len() as c_int, len)
            };
            if ptr.is_null() {
                return Err(Error::invalid("TF_AllocateTensor failed for a string tensor"));
            }
            let mut tensor = Tensor { ptr, tstrings: 0 };
            // SAFETY: the buffer holds strings.len() TF_TStrings; each is initialised before it
            // is counted in `tstrings` (so Drop deallocates exactly the initialised ones).
            unsafe {
                let base = sys::TF_TensorData(ptr) as *mut sys::TF_TString;
                for (i, s) in strings.iter().enumerate() {
                    let e = base.add(i);
                    sys::TF_StringInit(e);
                    tensor.tstrings = i + 1;
                    sys::TF_StringCopy(e, s.as_ptr().cast(), s.len());
                }
            }
            return Ok(tensor);
        }
        let bytes = t.to_bytes()?;
        // SAFETY: dims is live; the allocation has exactly bytes.len() bytes.
        let ptr = unsafe {
            tf_allocate_tensor_raw(dtype.code(), dims.as_ptr(), dims.len() as c_int, bytes.len())
        };
        if ptr.is_null() {
            return Err(Error::invalid("TF_AllocateTensor failed"));
        }
        let tensor = Tensor { ptr, tstrings: 0 };
        if !bytes.is_empty() {
            // SAFETY: TF_TensorData points at TF_TensorByteSize() >= bytes.len() bytes.
            unsafe {
                let size = sys::TF_TensorByteSize(ptr);
                let data = sys::TF_TensorData(ptr) as *mut u8;
                if data.is_null() || size < bytes.len() {
                    return Err(Error::invalid("TF_AllocateTensor returned a short buffer"));
                }
                ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
            }
        }
        Ok(tensor)
    }

    fn to_host(&self) -> Result<HostTensor> {
        // SAFETY: self.ptr is a live tensor; all reads stay within TF_TensorByteSize bytes.
        unsafe {
            let code = tf_tensor_type_raw(self.ptr);
            let dtype = DType::from_code(code)
                .map_err(|_| Error::UnsupportedDType(dtype_code_name(code)))?;
            let nd = sys::TF_NumDims(self.ptr).max(0);
            let shape: Vec<u64> = (0..nd).map(|i| sys::TF_Dim(self.ptr, i).max(0) as u64).collect();
            let n = crate::tensor::num_elements(&shape)?;
            let size = sys::TF_TensorByteSize(self.ptr);
            let data = sys::TF_TensorData(self.ptr) as *const u8;
            if dtype == DType::String {
                let need = n * std::mem::size_of::<sys::TF_TString>();
                if n > 0 && (data.is_null() || size < need) {
                    return Err(Error::invalid("string tensor buffer is too small"));
                }
                let base = data as *const sys::TF_TString;
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let e = base.add(i);
                    let p = sys::TF_StringGetDataPointer(e) as *const u8;
                    let len = sys::TF_StringGetSize(e);
                    out.push(if len == 0 || p.is_null() {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(p, len).to_vec()
                    });
                }
                return HostTensor::new(shape, Data::Str(out));
            }
            let bytes: &[u8] = if size == 0 || data.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(data, size)
            };
            HostTensor::from_bytes(dtype, shape, bytes)
        }
    }
}

/// A graph plus an open session on it.
pub struct Model {
    // Field order matters: the session must be dropped before the graph it runs.
    session: Session,
    graph: Graph,
    label: String,
}

impl Model {
    /// Import `graph_def` (serialized binary GraphDef) and open a session. `label` names the
    /// graph in error messages ("graph A", a file name, ...).
    pub fn load(graph_def: &[u8], label: &str) -> Result<Model> {
        let graph = Graph::import(graph_def).map_err(|e| with_label(e, label))?;
        // SAFETY: constructor; wrapped immediately.
        let opts = SessionOptions(unsafe { sys::TF_NewSessionOptions() });
        let status = Status::new();
        // SAFETY: graph and opts are live; the session keeps a reference to the graph, which
        // `Model` keeps alive longer than the session.
        let session = unsafe { sys::TF_NewSession(graph.0, opts.0, status.0) };
        if let Err(e) = status.check("session creation") {
            if !session.is_null() {
                drop(Session(session));
            }
            return Err(with_label(e, label));
        }
        if session.is_null() {
            return Err(Error::invalid(format!("{label}: TF_NewSession returned NULL")));
        }
        Ok(Model { session: Session(session), graph, label: label.to_string() })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Run the graph: feed `feeds` (tensor name -> value), fetch `fetches` (tensor names).
    pub fn run(&self, feeds: &[(&str, &HostTensor)], fetches: &[&str]) -> Result<Vec<HostTensor>> {
        let mut in_ports = Vec::with_capacity(feeds.len());
        let mut in_tensors = Vec::with_capacity(feeds.len());
        for (name, value) in feeds {
            in_ports.push(self.graph.resolve(name, &self.label)?);
            in_tensors.push(
                Tensor::from_host(value)
                    .map_err(|e| Error::invalid(format!("input '{name}': {e}")))?,
            );
        }
        let mut out_ports = Vec::with_capacity(fetches.len());
        for name in fetches {
            out_ports.push(self.graph.resolve(name, &self.label)?);
        }
        let inputs: Vec<sys::TF_Output> =
            in_ports.iter().map(|p| sys::TF_Output { oper: p.oper, index: p.index }).collect();
        let input_values: Vec<*mut sys::TF_Tensor> = in_tensors.iter().map(|t| t.ptr).collect();
        let outputs: Vec<sys::TF_Output> =
            out_ports.iter().map(|p| sys::TF_Output { oper: p.oper, index: p.index }).collect();
        let mut output_values: Vec<*mut sys::TF_Tensor> = vec![ptr::null_mut(); outputs.len()];
        let status = Status::new();
        // SAFETY: all arrays have the lengths passed; the caller keeps ownership of the input
        // tensors (dropped below) and receives ownership of the output tensors.
        unsafe {
            sys::TF_SessionRun(
                self.session.0,
                ptr::null(),
                inputs.as_ptr(),
                input_values.as_ptr(),
                inputs.len() as c_int,
                outputs.as_ptr(),
                output_values.as_mut_ptr(),
                outputs.len() as c_int,
                ptr::null(),
                0,
                ptr::null_mut(),
                status.0,
            )
        };
        // Take ownership of whatever was produced before checking the status. Outputs may share
        // buffers with inputs (e.g. Identity), so the inputs (declared earlier) must outlive the
        // conversion of the outputs: locals drop in reverse order, `owned` first.
        let owned: Vec<Option<Tensor>> = output_values
            .iter()
            .map(|&p| (!p.is_null()).then_some(Tensor { ptr: p, tstrings: 0 }))
            .collect();
        status.check("session run").map_err(|e| with_label(e, &self.label))?;
        let mut result = Vec::with_capacity(owned.len());
        for (t, name) in owned.iter().zip(fetches) {
            let t = t.as_ref().ok_or_else(|| {
                Error::invalid(format!("{}: no value produced for '{name}'", self.label))
            })?;
            result
                .push(t.to_host().map_err(|e| {
                    Error::invalid(format!("{}: output '{name}': {e}", self.label))
                })?);
        }
        Ok(result)
    }
}

fn with_label(e: Error, label: &str) -> Error {
    match e {
        Error::Tf { context, code, message } => {
            Error::Tf { context: format!("{context} of {label}"), code, message }
        }
        other => other,
    }
}
