//! Component names: normalised to `[a-z0-9_]+`, so a name is always a safe directory name.

use std::borrow::Cow;

/// Longest component name kept; longer names are cut.
pub const MAX_COMPONENT_LEN: usize = 64;

/// Directories under `logs/` that belong to the writer, not to a component.
pub const RESERVED_COMPONENTS: [&str; 2] = ["errors", "performance"];

/// The component used when a name normalises to nothing.
pub const FALLBACK_COMPONENT: &str = "app";

/// Normalises a component name to `[a-z0-9_]+` (at most [`MAX_COMPONENT_LEN`] bytes).
///
/// CamelCase becomes snake_case, every other character becomes `_`, runs of `_` collapse, and
/// leading/trailing `_` are trimmed. A name that normalises to nothing becomes `app`; the
/// writer's own directories (`errors`, `performance`) get a `_component` suffix. Names that
/// are already normal are returned borrowed, without allocating.
///
/// # Examples
///
/// ```
/// use tracekit_exporters::normalize_component;
///
/// assert_eq!(normalize_component("ranking"), "ranking");
/// assert_eq!(normalize_component("CandidateGenerator"), "candidate_generator");
/// assert_eq!(normalize_component("../etc/passwd"), "etc_passwd");
/// assert_eq!(normalize_component("a\0b"), "a_b");
/// assert_eq!(normalize_component(".."), "app");
/// assert_eq!(normalize_component("errors"), "errors_component");
/// ```
pub fn normalize_component(name: &str) -> Cow<'_, str> {
    if is_normal(name) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.chars() {
        let mapped = if c.is_ascii_uppercase() {
            // CamelCase boundary: a lower-case letter or digit before an upper-case one.
            if prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
                push_underscore(&mut out);
            }
            Some(c.to_ascii_lowercase())
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            Some(c)
        } else {
            None
        };
        match mapped {
            Some(m) => out.push(m),
            None => push_underscore(&mut out),
        }
        prev = Some(c);
        if out.len() > MAX_COMPONENT_LEN {
            break;
        }
    }
    out.truncate(MAX_COMPONENT_LEN);
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        return Cow::Borrowed(FALLBACK_COMPONENT);
    }
    let mut result = trimmed.to_owned();
    if RESERVED_COMPONENTS.contains(&result.as_str()) {
        result.push_str("_component");
    }
    Cow::Owned(result)
}

fn push_underscore(out: &mut String) {
    if !out.ends_with('_') {
        out.push('_');
    }
}

/// True when `name` is already a normal component name.
#[inline]
pub fn is_normal(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_COMPONENT_LEN
        && b[0] != b'_'
        && b[b.len() - 1] != b'_'
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && !b.windows(2).any(|w| w == b"__")
        && !RESERVED_COMPONENTS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_names_are_borrowed() {
        for name in ["app", "ab_test", "candidate", "x1"] {
            assert!(matches!(normalize_component(name), Cow::Borrowed(n) if n == name));
        }
    }

    #[test]
    fn hostile_names_stay_inside() {
        for (raw, want) in [
            ("/etc", "etc"),
            ("../x", "x"),
            ("a/../../b", "a_b"),
            ("C:\\win", "c_win"),
            ("", "app"),
            ("___", "app"),
            ("performance", "performance_component"),
            ("A\u{0}B", "a_b"),
            ("Ranking Service", "ranking_service"),
            ("HTTPServer2", "httpserver2"),
            ("ab-test", "ab_test"),
            ("ünïcode", "n_code"),
        ] {
            let got = normalize_component(raw);
            assert_eq!(got, want, "{raw:?}");
            assert!(is_normal(&got), "{got}");
        }
        let long = "x".repeat(500);
        assert_eq!(normalize_component(&long).len(), MAX_COMPONENT_LEN);
    }
}
