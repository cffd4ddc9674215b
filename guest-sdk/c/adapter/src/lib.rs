// Empty: this crate only exists to fetch its dependency (see Cargo.toml).
