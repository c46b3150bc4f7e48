//! berth-watch integration tests, one module per part.
