//! console: the operator console, a static page in the binary. `GET /` serves its HTML and
//! `GET /console/{file}` its script, styles and the vendored chart library (uPlot, see
//! `assets/VENDORED.md`). The files hold no data and need no token; the page reads and
//! changes everything through the `/v1` API with the token the operator signs in with, so
//! the API's auth decides what it may see and do.
//!
//! There is no build step: the files under `assets/` are what the browser runs (plain ES
//! modules, CSS and HTML), embedded with `include_bytes!`.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Its name under `/console/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("assets/", $name)),
        }
    };
}

/// The page itself, served at `/`.
pub const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// The files under `/console/`.
pub const ASSETS: &[Asset] = &[
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("pages.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    asset!("uPlot.min.css", "text/css; charset=utf-8"),
    asset!("uPlot.LICENSE", "text/plain; charset=utf-8"),
];

/// What the page may load and where it may connect: its own origin only (no inline script,
/// no third-party anything), and it may not be framed.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn serve(asset: &Asset) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.bytes,
    )
        .into_response();
    let headers = response.headers_mut();
    // The files change with the binary: revalidate rather than keep a stale console.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /`: the console's page.
pub async fn index() -> Response {
    serve(&INDEX)
}

/// `GET /console/{file}`: one of the page's files; a JSON 404 naming them for any other.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(asset) => serve(asset),
        None => crate::api::error::ApiError::not_found(format!(
            "console file {file} (the console's files are {})",
            ASSETS.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored files are the bytes `assets/VENDORED.md` names, so they can be fetched
    /// again from npm and compared.
    #[test]
    fn vendored_files_match_their_recorded_hashes() {
        let notes = include_str!("assets/VENDORED.md");
        let (mut checked, mut wrong) = (0, vec![]);
        for line in notes.lines() {
            let cells: Vec<&str> = line
                .split('|')
                .map(|c| c.trim().trim_matches('`'))
                .collect();
            // | file | bytes | sha256 | blake3 | from the tarball |
            if cells.len() < 6 || !cells[1].starts_with("uPlot") {
                continue;
            }
            let asset = ASSETS
                .iter()
                .find(|a| a.name == cells[1])
                .unwrap_or_else(|| panic!("VENDORED.md names {}, which is not embedded", cells[1]));
            let actual = blake3::hash(asset.bytes).to_hex().to_string();
            if cells[4] != actual || cells[2] != asset.bytes.len().to_string() {
                wrong.push(format!(
                    "{}: {} bytes, blake3 {actual}; VENDORED.md says {} bytes, {}",
                    asset.name,
                    asset.bytes.len(),
                    cells[2],
                    cells[4]
                ));
            }
            checked += 1;
        }
        assert!(
            wrong.is_empty(),
            "vendored files differ from VENDORED.md:\n{}",
            wrong.join("\n")
        );
        let vendored = ASSETS
            .iter()
            .filter(|a| a.name.starts_with("uPlot"))
            .count();
        assert_eq!(
            checked, vendored,
            "every vendored file has a line in VENDORED.md"
        );
    }

    /// The page loads exactly the files that are served, and every served file is loaded or
    /// imported by something (no dead files).
    #[test]
    fn the_page_names_the_files_that_are_served() {
        let html = std::str::from_utf8(INDEX.bytes).unwrap();
        let app = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        let pages = std::str::from_utf8(ASSETS[2].bytes).unwrap();
        let all = format!("{html}\n{app}\n{pages}");
        for a in ASSETS.iter().filter(|a| a.name != "uPlot.LICENSE") {
            assert!(
                all.contains(a.name),
                "{} is served but neither the page nor its scripts load it",
                a.name
            );
        }
    }
}
