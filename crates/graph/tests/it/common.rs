//! Shared helpers for the graph tests.
#![allow(dead_code)]
