//! tf-ops (placeholder)
