//! Pruning masks re-applied at serving time.
//!
//! A Keras model pruned with tensorflow-model-optimization's `prune_low_magnitude` and saved
//! without `strip_pruning` re-assigns every pruned weight in its inference function:
//! `AssignVariableOp(w, Mul(ReadVariableOp(w), ReadVariableOp(mask)))`, then reads `w` again
//! after that assignment. With a mask of zeros and ones this is idempotent: every call leaves
//! `w · mask`, which is what `strip_pruning` would have stored. Such an assignment is recognised
//! here, removed, and the weight frozen as `w · mask`; any other write is still refused.

use tf_graph::{Graph, Input, NodeId};
use tf_tensor::{dt, dtype, Tensor};

use crate::keys::variable_behind;
use crate::FreezeError;

/// One recognised `w ← w · mask` assignment.
#[derive(Debug, Clone)]
pub(crate) struct Masking {
    /// The AssignVariableOp.
    pub assign: NodeId,
    /// The weight's VarHandleOp.
    pub var: NodeId,
    /// The mask's VarHandleOp.
    pub mask: NodeId,
}

fn data_inputs(g: &Graph, id: NodeId) -> Vec<String> {
    g.node(id).input.iter().filter(|s| !Input::parse(s).is_control()).cloned().collect()
}

/// Follows Identity nodes from a data input to the node that computes the value.
fn producer(g: &Graph, input: &str) -> Option<NodeId> {
    let mut id = g.id(Input::parse(input).node())?;
    for _ in 0..64 {
        let n = g.node(id);
        if n.op != "Identity" {
            return Some(id);
        }
        let first = n.input.iter().map(|s| Input::parse(s)).find(|i| !i.is_control())?;
        id = g.id(first.node())?;
    }
    None
}

/// A variable read by value (through `ReadVariableOp`, maybe behind Identity nodes).
fn read_of(g: &Graph, input: &str) -> Option<NodeId> {
    let r = producer(g, input)?;
    if g.node(r).op != "ReadVariableOp" {
        return None;
    }
    let handle = data_inputs(g, r).into_iter().next()?;
    variable_behind(g, &handle).filter(|v| g.node(*v).op == "VarHandleOp")
}

/// Every `AssignVariableOp(w, w · mask)` of the graph, with `w` and `mask` two variables.
pub(crate) fn find(g: &Graph) -> Vec<Masking> {
    let mut found = Vec::new();
    for (id, n) in g.nodes() {
        if n.op != "AssignVariableOp" {
            continue;
        }
        let inputs = data_inputs(g, id);
        let [handle, value] = inputs.as_slice() else { continue };
        let Some(var) = variable_behind(g, handle).filter(|v| g.node(*v).op == "VarHandleOp")
        else {
            continue;
        };
        let Some(mul) = producer(g, value).filter(|m| g.node(*m).op == "Mul") else { continue };
        let factors: Vec<Option<NodeId>> =
            data_inputs(g, mul).iter().map(|s| read_of(g, s)).collect();
        let mask = match factors.as_slice() {
            [Some(a), Some(b)] if *a == var && *b != var => *b,
            [Some(a), Some(b)] if *b == var && *a != var => *a,
            _ => continue,
        };
        found.push(Masking { assign: id, var, mask });
    }
    found
}

/// `w · mask`, after checking that the mask holds only zeros and ones (else re-applying it
/// would not be idempotent and freezing once would change the model).
pub(crate) fn apply(
    var: &str,
    w: &Tensor,
    mask_name: &str,
    mask: &Tensor,
) -> Result<Tensor, FreezeError> {
    let bad = |why: String| {
        FreezeError::Freeze(format!(
            "variable '{var}' is re-assigned as itself times '{mask_name}' at run time, but {why}; \
             keep both with --keep-variables"
        ))
    };
    if w.dtype != mask.dtype || w.shape != mask.shape {
        return Err(bad(format!(
            "the mask is {} {} and the weight {} {}",
            dtype::short_name(mask.dtype),
            tf_tensor::dims_to_string(&mask.shape),
            dtype::short_name(w.dtype),
            tf_tensor::dims_to_string(&w.shape)
        )));
    }
    let not_binary = || bad("the mask holds values other than 0 and 1".into());
    let err = |e: tf_tensor::TensorError| FreezeError::Freeze(format!("variable '{var}': {e}"));
    match w.dtype {
        dt::FLOAT => {
            let (a, m) = (w.values::<f32>().map_err(err)?, mask.values::<f32>().map_err(err)?);
            if m.iter().any(|x| *x != 0.0 && *x != 1.0) {
                return Err(not_binary());
            }
            let p: Vec<f32> = a.iter().zip(&m).map(|(a, m)| a * m).collect();
            Tensor::from_values(w.dtype, &w.shape, &p).map_err(err)
        }
        dt::DOUBLE => {
            let (a, m) = (w.values::<f64>().map_err(err)?, mask.values::<f64>().map_err(err)?);
            if m.iter().any(|x| *x != 0.0 && *x != 1.0) {
                return Err(not_binary());
            }
            let p: Vec<f64> = a.iter().zip(&m).map(|(a, m)| a * m).collect();
            Tensor::from_values(w.dtype, &w.shape, &p).map_err(err)
        }
        t => Err(bad(format!("masks of {} are not supported", dtype::short_name(t)))),
    }
}
