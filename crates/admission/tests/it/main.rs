//! Integration tests of berth-admission against a real berth registry on 127.0.0.1.
