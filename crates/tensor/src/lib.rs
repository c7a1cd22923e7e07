//! tf-tensor (placeholder)
