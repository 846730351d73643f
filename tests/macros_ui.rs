//! Compile-time tests of the route-guard attributes: what must compile, and the exact errors
//! for what must not (`tests/ui/fail/*.stderr`; regenerate with
//! `TRYBUILD=overwrite cargo test --test macros_ui`, then read every diff).
#![cfg(feature = "macros")]

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
