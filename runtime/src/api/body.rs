//! Reading request bodies with a cap, and answering a refusal only after the client has sent
//! its body: a server that answers early and closes makes a client still uploading see a
//! connection reset ("broken pipe") instead of the answer.

use super::error::ApiError;
use super::submission;
use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

/// The body, when it holds at most `limit` bytes. Past that, the rest is read and dropped (up
/// to `drain` bytes in all) before `over` is answered, so the client reads the refusal.
pub async fn read_at_most(
    body: Body,
    limit: usize,
    drain: usize,
    over: impl FnOnce() -> ApiError,
) -> Result<Bytes, ApiError> {
    let mut body = body;
    let mut kept = bytes::BytesMut::new();
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| submission::truncated(e.into_inner()))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        read += data.len();
        if read > limit {
            discard(body, drain.saturating_sub(read)).await;
            return Err(over());
        }
        kept.extend_from_slice(data);
    }
    Ok(kept.freeze())
}

/// Read and drop what is left of a refused request's body, up to `limit` bytes.
pub async fn discard(mut body: Body, limit: usize) {
    let mut read = 0;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, |d| d.len());
        if read > limit {
            break;
        }
    }
}
