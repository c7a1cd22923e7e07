//! tf-io (placeholder)
