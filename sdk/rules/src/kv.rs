//! The `driftless:kv` limits and counter arithmetic.

/// Longest key or bucket name, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Why a key, a value or a counter is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The key (or bucket name) is empty or too long.
    InvalidKey(String),
    /// The value is too large.
    TooLarge(String),
    /// The value is not a decimal integer, so it cannot be incremented.
    NotANumber(String),
    /// Incrementing would overflow a signed 64-bit integer.
    Overflow(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::InvalidKey(m) | Refused::TooLarge(m) => f.write_str(m),
            Refused::NotANumber(key) => write!(
                f,
                "the value under `{key}` is not a decimal integer, so it cannot be incremented; set it to a number first"
            ),
            Refused::Overflow(key) => {
                write!(f, "incrementing `{key}` would overflow a 64-bit integer")
            }
        }
    }
}

/// Check a bucket and key, and the value to store under them (if any).
pub fn check(bucket: &str, key: &str, value: Option<&[u8]>) -> Result<(), Refused> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || bucket.len() > MAX_KEY_BYTES {
        return Err(Refused::InvalidKey(format!(
            "keys must be 1 to {MAX_KEY_BYTES} bytes and buckets at most {MAX_KEY_BYTES} bytes (got a {}-byte key)",
            key.len()
        )));
    }
    if let Some(v) = value
        && v.len() > MAX_VALUE_BYTES
    {
        return Err(Refused::TooLarge(format!(
            "values are limited to {MAX_VALUE_BYTES} bytes (got {}); split the value or store a digest",
            v.len()
        )));
    }
    Ok(())
}

/// Parse a stored counter under `key` (missing = 0) and add `delta`.
pub fn add_to_counter(key: &str, current: Option<&[u8]>, delta: i64) -> Result<i64, Refused> {
    let n = match current {
        None => 0,
        Some(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| Refused::NotANumber(key.to_string()))?,
    };
    n.checked_add(delta)
        .ok_or_else(|| Refused::Overflow(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_counters() {
        assert!(matches!(check("", "", None), Err(Refused::InvalidKey(_))));
        assert!(check("", &"k".repeat(MAX_KEY_BYTES), None).is_ok());
        let big = vec![0; MAX_VALUE_BYTES + 1];
        assert!(matches!(
            check("", "k", Some(&big)),
            Err(Refused::TooLarge(_))
        ));
        assert_eq!(add_to_counter("n", None, 2), Ok(2));
        assert_eq!(add_to_counter("n", Some(b" 40 "), 2), Ok(42));
        assert_eq!(
            add_to_counter("n", Some(b"x"), 1),
            Err(Refused::NotANumber("n".into()))
        );
        assert_eq!(
            add_to_counter("n", Some(i64::MAX.to_string().as_bytes()), 1),
            Err(Refused::Overflow("n".into()))
        );
    }
}
