//! A job submission's parts, parsed without HTTP: the JSON spec (a whole `application/json`
//! body or a multipart `spec` part), the multipart form, and the `input` query parameter, each
//! bounded by the node's caps. Pure functions of bytes, so the fuzz harness
//! (`tests/tests/fuzz.rs`) drives them directly; every input ends in a value or an
//! [`ApiError`] with a stable code.

use super::error::ApiError;
use crate::store::{ConcurrencyKey, Turn};
use crate::wire::{ErrorCode, JobSpec};
use bytes::Bytes;
use serde_json::Value;

/// Room for a spec's other fields (task, limits, optional imports) next to its input: a JSON
/// body or `spec` part may be this much larger than `max_input_bytes`.
pub const SPEC_OVERHEAD_BYTES: usize = 64 << 10;

/// The size caps a submission is held to (`serve --max-upload-bytes`, `--max-input-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Largest request body (a component upload), in bytes.
    pub max_upload_bytes: usize,
    /// Largest job input, as compact JSON, in bytes.
    pub max_input_bytes: usize,
}

impl Caps {
    /// Largest JSON spec (a JSON body, or a multipart `spec` part).
    pub fn max_spec_bytes(&self) -> usize {
        self.max_input_bytes.saturating_add(SPEC_OVERHEAD_BYTES)
    }
}

/// 413 `too-large`: the body is over the upload cap; nothing was stored.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!(
            "the upload is larger than this node accepts ({limit} bytes); nothing was stored. Strip debug info (`strip = true` in the release profile) or raise --max-upload-bytes"
        ),
    )
}

/// 413 `input-too-large`: the input (`what`, of `size` bytes when known) is over
/// `--max-input-bytes`; nothing was stored.
pub fn input_too_large(what: &str, size: Option<usize>, caps: &Caps) -> ApiError {
    let size = size.map(|n| format!(" ({n} bytes)")).unwrap_or_default();
    ApiError::new(
        ErrorCode::InputTooLarge,
        format!(
            "{what}{size} is larger than this node accepts for a job's input ({} bytes of JSON, --max-input-bytes); nothing was stored. Pass large data by reference (a URL, a kv key) or raise --max-input-bytes on the daemon",
            caps.max_input_bytes
        ),
    )
}

/// 400 `bad-request`: the body ended before it was complete (the client stopped sending, or
/// the multipart form is cut short).
pub fn truncated(detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "the request body is incomplete or malformed ({detail}); nothing was stored. Send the whole body again"
    ))
}

/// The size of `value` as compact JSON (as it is stored), counted without building the text.
pub fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value).expect("counting never fails");
    count.0
}

/// Refuse an input over the cap.
pub fn check_input(input: Option<&Value>, caps: &Caps) -> Result<(), ApiError> {
    match input.map(json_size) {
        Some(size) if size > caps.max_input_bytes => {
            Err(input_too_large("the job's input", Some(size), caps))
        }
        _ => Ok(()),
    }
}

/// The longest a job may be delayed: 366 days, in milliseconds.
pub const MAX_DELAY_MS: u64 = 366 * 24 * 3_600_000;
/// The longest concurrency key, in bytes.
pub const MAX_CONCURRENCY_KEY_BYTES: usize = 256;
/// The largest concurrency limit.
pub const MAX_CONCURRENCY_LIMIT: u32 = 10_000;

/// A spec's place in the queue (priority, earliest start, concurrency key), checked; `now` is
/// the time of acceptance (ms since the epoch).
pub fn turn(spec: &JobSpec, now: i64) -> Result<Turn, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::BadSpec, m);
    let not_before_ms = match (spec.delay_ms, &spec.not_before) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "the spec has both delay_ms and not_before; give one of them".into(),
            ));
        }
        (Some(d), None) if d > MAX_DELAY_MS => {
            return Err(bad(format!(
                "delay_ms is {d}; a job may be delayed by at most {MAX_DELAY_MS} ms (366 days)"
            )));
        }
        (Some(d), None) => Some(now + d as i64),
        (None, Some(text)) => {
            let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    bad(format!(
                        "not_before {text:?} is not an RFC 3339 time ({e}); write it like 2026-12-24T18:00:00Z or 2026-12-24T18:00:00+01:00"
                    ))
                })?;
            let ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
            if ms > now + MAX_DELAY_MS as i64 {
                return Err(bad(format!(
                    "not_before {text} is more than 366 days ahead; a job may be delayed by at most that"
                )));
            }
            Some(ms)
        }
        (None, None) => None,
    };
    let concurrency = match (&spec.concurrency_key, spec.concurrency_limit) {
        (None, Some(_)) => {
            return Err(bad(
                "concurrency_limit needs a concurrency_key: the limit counts the jobs sharing that key".into(),
            ));
        }
        (None, None) => None,
        (Some(key), limit) => {
            if key.is_empty() || key.len() > MAX_CONCURRENCY_KEY_BYTES {
                return Err(bad(format!(
                    "concurrency_key must be 1 to {MAX_CONCURRENCY_KEY_BYTES} bytes; it is {}",
                    key.len()
                )));
            }
            let limit = limit.unwrap_or(1);
            if limit == 0 || limit > MAX_CONCURRENCY_LIMIT {
                return Err(bad(format!(
                    "concurrency_limit must be between 1 and {MAX_CONCURRENCY_LIMIT}; it is {limit}"
                )));
            }
            Some(ConcurrencyKey {
                key: key.clone(),
                limit,
            })
        }
    };
    Ok(Turn {
        priority: spec.priority.unwrap_or(0),
        not_before_ms,
        concurrency,
    })
}

/// A JSON job spec: a whole `application/json` body or a multipart `spec` part.
pub fn spec(bytes: &[u8], caps: &Caps) -> Result<JobSpec, ApiError> {
    if bytes.len() > caps.max_spec_bytes() {
        return Err(input_too_large("the job spec", Some(bytes.len()), caps));
    }
    let spec: JobSpec = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(ErrorCode::BadSpec,
            format!("the job spec is not valid ({e}); it is a JSON object with optional fields component, task, input, timeout_ms, memory_mib, max_attempts, optional_imports, priority, delay_ms, not_before, concurrency_key, concurrency_limit"),
        )
    })?;
    check_input(spec.input.as_ref(), caps)?;
    Ok(spec)
}

/// The `input` query parameter of an `application/wasm` submission: JSON text.
pub fn query_input(text: &str, caps: &Caps) -> Result<Value, ApiError> {
    if text.len() > caps.max_input_bytes {
        return Err(input_too_large(
            "the `input` query parameter",
            Some(text.len()),
            caps,
        ));
    }
    let input = serde_json::from_str(text).map_err(|e| {
        ApiError::bad_request(format!("the `input` query parameter is not JSON ({e}); URL-encode a JSON value, e.g. input=%7B%22key%22%3A1%7D"))
    })?;
    check_input(Some(&input), caps)?;
    Ok(input)
}

/// A multipart submission (`content_type` is the request's header, with its boundary): part
/// `component` (required, the .wasm) and part `spec` (optional, JSON). A form cut short is
/// `bad-request`; a `spec` part over the input cap is `input-too-large`.
pub async fn multipart(
    content_type: &str,
    body: Bytes,
    caps: &Caps,
) -> Result<(Vec<u8>, JobSpec), ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| {
        ApiError::bad_request(format!(
            "the multipart body is malformed: {e}; send multipart/form-data with a boundary"
        ))
    })?;
    let limits = multer::SizeLimit::new().for_field("spec", caps.max_spec_bytes() as u64);
    let stream = futures_util::stream::once(std::future::ready(Ok::<
        Bytes,
        std::convert::Infallible,
    >(body)));
    let mut form = multer::Multipart::with_constraints(
        stream,
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let malformed = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { .. } => {
            input_too_large("the multipart `spec` part", None, caps)
        }
        multer::Error::IncompleteFieldData { .. }
        | multer::Error::IncompleteHeaders
        | multer::Error::IncompleteStream => truncated(e),
        other => ApiError::bad_request(format!("the multipart body is malformed: {other}")),
    };
    let (mut component, mut spec) = (None, JobSpec::default());
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "component" | "spec" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected multipart part `{other}`; send `component` (the .wasm) and optionally `spec` (JSON)"
                )));
            }
        }
        let data = field.bytes().await.map_err(malformed)?;
        if name == "component" {
            component = Some(data.to_vec());
        } else {
            spec = self::spec(&data, caps)?;
        }
    }
    let component = component.ok_or_else(|| {
        ApiError::bad_request(
            "the multipart body has no `component` part; attach the .wasm as `component`",
        )
    })?;
    Ok((component, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        max_upload_bytes: 1 << 20,
        max_input_bytes: 1000,
    };

    fn form(parts: &[(&str, &[u8])], close: bool) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, data) in parts {
            body.extend_from_slice(
                format!("--B\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        if close {
            body.extend_from_slice(b"--B--\r\n");
        }
        body
    }

    async fn parse(body: Vec<u8>) -> Result<(Vec<u8>, JobSpec), ApiError> {
        multipart("multipart/form-data; boundary=B", body.into(), &CAPS).await
    }

    #[tokio::test]
    async fn a_whole_form_parses_and_a_cut_one_is_a_bad_request() {
        let body = form(&[("component", b"wasm"), ("spec", b"{\"input\": 1}")], true);
        let (component, spec) = parse(body.clone()).await.unwrap();
        assert_eq!(
            (component.as_slice(), spec.input),
            (&b"wasm"[..], Some(1.into()))
        );
        for cut in [body.len() - 9, body.len() / 2, 10] {
            let e = parse(body[..cut].to_vec()).await.unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "cut at {cut}: {}", e.message);
        }
    }

    #[tokio::test]
    async fn inputs_over_the_cap_are_input_too_large() {
        let big = format!("{{\"input\": \"{}\"}}", "x".repeat(1000));
        let e = spec(big.as_bytes(), &CAPS).unwrap_err();
        assert_eq!(e.code, ErrorCode::InputTooLarge);
        assert!(e.message.contains("--max-input-bytes"), "{}", e.message);
        let e = parse(form(&[("component", b"w"), ("spec", big.as_bytes())], true))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InputTooLarge);
        let huge = vec![b' '; CAPS.max_spec_bytes() + 1];
        let e = parse(form(&[("component", b"w"), ("spec", &huge)], true))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InputTooLarge);
        let e = query_input(&format!("\"{}\"", "x".repeat(999)), &CAPS).unwrap_err();
        assert_eq!(e.code, ErrorCode::InputTooLarge);
        assert!(query_input(&format!("\"{}\"", "x".repeat(990)), &CAPS).is_ok());
    }
}
