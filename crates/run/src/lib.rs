//! tf-run (placeholder)
