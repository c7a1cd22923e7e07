//! tf-cli (placeholder)
