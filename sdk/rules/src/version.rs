//! Which versions are interchangeable: the compatibility class of a semver version.
//!
//! This is exactly the rule wasmtime's component linker uses to resolve versioned names
//! (`wasmtime-environ` `component/names.rs`, `alternate_lookup_key`): for major > 0 the same
//! major; for `0.y` (y > 0) the same minor; `0.0.z` and any pre-release only match themselves.
//! Build metadata is ignored. Using the linker's own rule means the compat check and
//! instantiation always agree on which host version an import links to.

use semver::Version;
use std::fmt;

/// A set of mutually compatible versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Class {
    /// `M.x.y` with M > 0.
    Major(u64),
    /// `0.m.y` with m > 0.
    Minor(u64),
    /// `0.0.z` or a pre-release: only this exact version (build metadata stripped).
    Exact(Version),
}

impl Class {
    /// The class of `version`.
    pub fn of(version: &Version) -> Class {
        if !version.pre.is_empty() {
            let mut exact = version.clone();
            exact.build = semver::BuildMetadata::EMPTY;
            return Class::Exact(exact);
        }
        match (version.major, version.minor) {
            (0, 0) => Class::Exact(Version::new(0, 0, version.patch)),
            (0, minor) => Class::Minor(minor),
            (major, _) => Class::Major(major),
        }
    }

    /// Whether `version` is in this class.
    pub fn contains(&self, version: &Version) -> bool {
        Class::of(version) == *self
    }
}

/// Whether a host providing `provided` serves a job built against `wanted` with every function
/// `wanted` has: the same class, and not older.
pub fn serves(provided: &Version, wanted: &Version) -> bool {
    Class::of(provided) == Class::of(wanted) && provided >= wanted
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Class::Major(m) => write!(f, "{m}.x"),
            Class::Minor(m) => write!(f, "0.{m}.x"),
            Class::Exact(v) => write!(f, "exactly {v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    /// The table from wasmtime-environ's `alternate_lookup_key` test, expressed as classes:
    /// two versions share a class exactly when the linker would let one stand for the other.
    #[test]
    fn matches_the_linker_lookup_table() {
        let same = [
            ("1.0.0", "1.2.3"),
            ("1.0.0", "1.0.1"),
            ("2.0.0", "2.9.0"),
            ("0.2.0", "0.2.12"),
            ("0.2.6", "0.2.12"),
            ("1.0.0+abc", "1.0.0"),
            ("1.2.0+build.5", "1.9.0"),
            ("0.0.1", "0.0.1+meta"),
            ("1.0.0-rc.1", "1.0.0-rc.1"),
        ];
        let different = [
            ("1.0.0", "2.0.0"),
            ("0.1.0", "0.2.0"),
            ("0.0.1", "0.0.2"),
            ("0.1.0", "1.1.0"),
            ("1.0.0-rc.1", "1.0.0"),
            ("1.0.0-rc.1", "1.0.0-rc.2"),
            ("0.2.0-pre", "0.2.0"),
        ];
        for (a, b) in same {
            assert_eq!(Class::of(&v(a)), Class::of(&v(b)), "{a} ~ {b}");
        }
        for (a, b) in different {
            assert_ne!(Class::of(&v(a)), Class::of(&v(b)), "{a} !~ {b}");
        }
        assert_eq!(Class::of(&v("1.4.0")).to_string(), "1.x");
        assert_eq!(Class::of(&v("0.2.6")).to_string(), "0.2.x");
        assert_eq!(Class::of(&v("0.0.3")).to_string(), "exactly 0.0.3");
    }
}
