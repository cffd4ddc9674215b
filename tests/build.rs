//! Builds the hostile test process (and the examples, for end-to-end tests).

include!("../host/build/guests.rs");

fn main() {
    build_guests(
        &["hostile", "hello-world", "echo", "geometry"],
        &["tests/hostile", "processes"],
    );
}
