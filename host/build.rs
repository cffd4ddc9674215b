//! Builds the example processes so the binary can serve them as built-ins,
//! and the hostile test processes (`hostile`, `hostile-describe`) for the
//! runtime's own tests (they are not embedded in the binary).

include!("build/guests.rs");

fn main() {
    build_guests(
        &[
            "hello-world",
            "echo",
            "geometry",
            "hostile",
            "hostile-describe",
        ],
        &["processes", "tests/hostile", "tests/hostile-describe"],
    );
}
