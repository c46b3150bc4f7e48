//! Integration tests of berth-container: one module per area.

mod cgroups;
