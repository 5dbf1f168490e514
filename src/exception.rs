//! Errors as records write them: the type name from a derived `Debug`, the `source()` chain.

use std::error::Error;
use std::fmt::Write as _;

/// The length of the type name that starts a derived `Debug` output (`ParseIntError { .. }`,
/// `Timeout(..)`), or 0 when it does not start with one.
pub(crate) fn type_name_len(debug: &str) -> usize {
    if !debug.starts_with(|c: char| c.is_ascii_uppercase()) {
        return 0;
    }
    let len = debug
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(debug.len());
    let rest = &debug[len..];
    if rest.is_empty() || rest.starts_with([' ', '(', '{']) {
        len
    } else {
        0
    }
}

/// Writes the error's `source()` chain, one `caused by: ..` line per cause.
pub(crate) fn write_source_chain(out: &mut String, error: &(dyn Error + 'static)) {
    let mut next = error.source();
    while let Some(cause) = next {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = write!(out, "caused by: {cause}");
        next = cause.source();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_come_from_derived_debug() {
        assert_eq!(type_name_len("ParseIntError { kind: Empty }"), 13);
        assert_eq!(type_name_len("Timeout(3s)"), 7);
        assert_eq!(type_name_len("Unit"), 4);
        assert_eq!(type_name_len("\"text\""), 0);
        assert_eq!(type_name_len("connection refused"), 0);
        assert_eq!(type_name_len("Error: x"), 0);
    }

    #[test]
    fn the_chain_lists_every_cause() {
        let inner = std::io::Error::other("disk full");
        let outer = std::io::Error::other(Wrap(inner));
        let mut out = String::new();
        write_source_chain(&mut out, &outer);
        assert_eq!(out, "caused by: disk full");
    }

    #[derive(Debug)]
    struct Wrap(std::io::Error);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }
    impl Error for Wrap {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
}
