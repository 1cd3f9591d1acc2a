//! The consent flow over HTTP (being written).
