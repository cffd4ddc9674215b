//! Builds the example processes so the binary can serve them as built-ins,
//! and the hostile test process for the runtime's own tests (it is not
//! embedded in the binary).

include!("build/guests.rs");

fn main() {
    build_guests(
        &["hello-world", "echo", "geometry", "hostile"],
        &["processes", "tests/hostile"],
    );
}
