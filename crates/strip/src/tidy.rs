//! The last pass: devices and colocations, `_output_shapes`, default attributes, and the
//! library functions nothing calls any more.

use tf_ops::Registry;
use tf_proto::tensorflow::{attr_value, AttrValue};

use crate::{DefaultAttrs, StripConfig, StripReport};

pub(crate) fn tidy(g: &mut tf_graph::Graph, cfg: &StripConfig, report: &mut StripReport) {
    let registry = Registry::global();
    for id in g.ids() {
        let mut guard = g.node_mut(id);
        let n: &mut tf_proto::tensorflow::NodeDef = &mut guard;
        if !cfg.keep_devices {
            if !n.device.is_empty() {
                n.device.clear();
                report.devices_cleared += 1;
            }
            if let Some(a) = n.attr.remove("_class") {
                report.colocations_removed += colocations(&a).count().max(1);
            }
        }
        if cfg.clear_output_shapes && n.attr.remove("_output_shapes").is_some() {
            report.output_shapes_cleared += 1;
        }
        match cfg.default_attrs {
            DefaultAttrs::Keep => {}
            DefaultAttrs::Strip => report.default_attrs_stripped += registry.strip_default_attrs(n),
            DefaultAttrs::Add => report.default_attrs_added += registry.add_default_attrs(n),
        }
    }
    if cfg.keep_devices {
        report.colocations_removed += g.drop_dangling_colocations();
    }
    let removed = g.prune_library();
    if !removed.is_empty() {
        report.functions_removed = removed;
    }
    if cfg.default_attrs != DefaultAttrs::Keep {
        for f in g.library.iter_mut().flat_map(|l| l.function.iter_mut()) {
            for n in &mut f.node_def {
                match cfg.default_attrs {
                    DefaultAttrs::Strip => {
                        report.default_attrs_stripped += registry.strip_default_attrs(n)
                    }
                    _ => report.default_attrs_added += registry.add_default_attrs(n),
                }
            }
        }
    }
}

fn colocations(a: &AttrValue) -> impl Iterator<Item = &[u8]> {
    let list = match &a.value {
        Some(attr_value::Value::List(l)) => l.s.as_slice(),
        _ => &[],
    };
    list.iter().map(Vec::as_slice).filter(|s| s.starts_with(b"loc:@"))
}
