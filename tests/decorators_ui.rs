//! Misuse of the decorators is a compile error at the offending token, with a message that
//! says what to do (trybuild: each `tests/ui/*.rs` beside the `.stderr` it must produce).

#[test]
fn misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
