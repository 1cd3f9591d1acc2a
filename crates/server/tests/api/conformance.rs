//! Conformance with MTN's OpenAPI definitions (being written).
