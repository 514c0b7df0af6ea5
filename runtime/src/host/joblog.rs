//! The job log of one attempt: stdout, stderr and `context.log` lines, in order, capped.
//! Past the cap, bytes are dropped (and counted) instead of failing the guest's writes, so a
//! chatty job keeps running and its log says it was truncated.

use bytes::Bytes;
use serde::Serialize;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Where a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// WASI stdout.
    Stdout,
    /// WASI stderr.
    Stderr,
    /// `driftless:job/context.log`.
    Context,
}

/// One chunk of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// Where it came from.
    pub source: Source,
    /// Text (lossy UTF-8); context lines are `level: message`.
    pub text: String,
}

/// What an attempt logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LogContents {
    /// The chunks kept, in order.
    pub chunks: Vec<Chunk>,
    /// Bytes kept.
    pub bytes: usize,
    /// Bytes dropped past the cap.
    pub dropped_bytes: u64,
}

impl LogContents {
    /// Everything kept, concatenated, with a closing note when bytes were dropped.
    pub fn text(&self) -> String {
        let mut out: String = self.chunks.iter().map(|c| c.text.as_str()).collect();
        if self.dropped_bytes > 0 {
            out.push_str(&format!(
                "\n[driftless: log truncated, {} more bytes dropped]\n",
                self.dropped_bytes
            ));
        }
        out
    }
}

/// A capped, shared log. Cloning shares it.
#[derive(Clone)]
pub struct JobLog {
    inner: Arc<Mutex<LogContents>>,
    cap: usize,
}

impl JobLog {
    /// A log that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        JobLog {
            inner: Arc::default(),
            cap,
        }
    }

    /// Append bytes from `source`, keeping what fits under the cap.
    pub fn append(&self, source: Source, bytes: &[u8]) {
        let mut log = self.inner.lock().expect("log lock");
        let room = self.cap.saturating_sub(log.bytes);
        let kept = &bytes[..bytes.len().min(room)];
        log.dropped_bytes += (bytes.len() - kept.len()) as u64;
        if kept.is_empty() {
            return;
        }
        log.bytes += kept.len();
        let text = String::from_utf8_lossy(kept);
        match log.chunks.last_mut() {
            Some(last) if last.source == source => last.text.push_str(&text),
            _ => log.chunks.push(Chunk {
                source,
                text: text.into_owned(),
            }),
        }
    }

    /// A copy of what was logged so far.
    pub fn contents(&self) -> LogContents {
        self.inner.lock().expect("log lock").clone()
    }

    /// A WASI output stream that writes into this log.
    pub fn stream(&self, source: Source) -> LogStream {
        LogStream {
            log: self.clone(),
            source,
        }
    }
}

/// A WASI stdout/stderr that appends to a [`JobLog`] and never fails.
#[derive(Clone)]
pub struct LogStream {
    log: JobLog,
    source: Source,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.append(self.source, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.append(self.source, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_drops_past_the_cap() {
        let log = JobLog::new(10);
        log.append(Source::Stdout, b"abc");
        log.append(Source::Stderr, b"de");
        log.append(Source::Stdout, b"fghijkl");
        let c = log.contents();
        assert_eq!(c.bytes, 10);
        assert_eq!(c.dropped_bytes, 2);
        assert_eq!(c.chunks.len(), 3);
        assert_eq!(
            c.text(),
            "abcdefghij\n[driftless: log truncated, 2 more bytes dropped]\n"
        );
    }
}
