//! tf-inspect (placeholder)
