//! cgroups v1 and v2 behind one `CgroupManager` trait (being written).
