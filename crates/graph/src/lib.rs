//! tf-graph (placeholder)
