//! The certificate and key the server answers HTTPS with (`--tls-cert`, `--tls-key`): PEM
//! files read once at start, served by rustls with the `ring` provider over HTTP/1.1.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate, then its intermediates (PEM).
    pub cert: PathBuf,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the server cannot serve HTTPS with the given files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read the TLS {what} {} ({source}); check the path given to --tls-{what}", path.display())]
    Unreadable {
        /// `cert` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no PEM item of the right kind, or a malformed one.
    #[error("the TLS {what} file {} {problem}; --tls-{what} takes a PEM file ({expected})", path.display())]
    Invalid {
        /// `cert` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// rustls refused the pair (the key does not match the certificate, an unsupported key).
    #[error("the TLS certificate {} and key {} cannot be used together ({source}); give the key that belongs to the certificate", cert.display(), key.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
}

impl TlsFiles {
    /// Read both files and build the acceptor.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let chain = self.certificates()?;
        let key = self.private_key()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|source| TlsError::Mismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
                source,
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        const EXPECTED: &str =
            "-----BEGIN CERTIFICATE----- blocks: the server's first, then its intermediates";
        let text = read(&self.cert, "cert")?;
        let chain = CertificateDer::pem_slice_iter(&text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                invalid(
                    &self.cert,
                    "cert",
                    format!("is not valid PEM ({e})"),
                    EXPECTED,
                )
            })?;
        if chain.is_empty() {
            return Err(invalid(
                &self.cert,
                "cert",
                "holds no certificate".into(),
                EXPECTED,
            ));
        }
        Ok(chain)
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        const EXPECTED: &str = "a -----BEGIN PRIVATE KEY----- (or RSA / EC PRIVATE KEY) block";
        let text = read(&self.key, "key")?;
        PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
            let problem = match e {
                rustls::pki_types::pem::Error::NoItemsFound => "holds no private key".to_string(),
                e => format!("is not a valid PEM private key ({e})"),
            };
            invalid(&self.key, "key", problem, EXPECTED)
        })
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Unreadable {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(path: &Path, what: &'static str, problem: String, expected: &'static str) -> TlsError {
    TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        problem,
        expected,
    }
}
