//! tf-proto (placeholder)
