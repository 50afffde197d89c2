//! Placeholder until the node-test runner lands.
