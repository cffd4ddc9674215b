//! Builds the hostile test processes (`hostile`, `hostile-describe`) and the
//! examples, for the end-to-end tests.

include!("../host/build/guests.rs");

fn main() {
    build_guests(
        &[
            "hostile",
            "hostile-describe",
            "hello-world",
            "echo",
            "geometry",
        ],
        &["tests/hostile", "tests/hostile-describe", "processes"],
    );
}
