//! TLS to PostgreSQL, as libpq's `sslmode` and `sslrootcert` ask (rustls, `ring` provider).
//!
//! tokio-postgres reads `sslmode` `disable`, `prefer` (the default) and `require`, and leaves
//! checking the server's certificate to the connector; it refuses `verify-ca`,
//! `verify-full` and `sslrootcert`. So those are taken off the address here, and the connector
//! does what libpq does:
//!
//! | sslmode | encrypted | certificate checked |
//! | --- | --- | --- |
//! | `disable` | no | - |
//! | `prefer` (default) | when the server offers TLS | no |
//! | `require` | yes | no; with `sslrootcert`, its chain (as `verify-ca`) |
//! | `verify-ca` | yes | its chain, against `sslrootcert` or the system's roots |
//! | `verify-full` | yes | its chain and that it names the host |
//!
//! `sslrootcert=system` names the system's trust store explicitly.

use super::{StoreError, StoreResult};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// Not at all (`prefer`, `require`): encryption against passive listeners only.
    Nothing,
    /// Its chain to a trusted root, not its name (`verify-ca`).
    Chain,
    /// Its chain and that it names the host (`verify-full`).
    Full,
}

/// The TLS settings of a PostgreSQL address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PgTls {
    check: Check,
    /// `sslrootcert`: a PEM file of trusted roots (`None`: the system's).
    roots: Option<PathBuf>,
}

impl PgTls {
    /// Take `sslmode=verify-*` and `sslrootcert` off `url` (either form: `postgres://…?k=v&…`
    /// or libpq's `k=v k=v`); the rest is for tokio-postgres, with `verify-*` as `require`.
    pub(super) fn split(url: &str) -> StoreResult<(String, PgTls)> {
        let mut tls = PgTls {
            check: Check::Nothing,
            roots: None,
        };
        let mut mode: Option<String> = None;
        let mut keep = |key: &str, value: &str| -> bool {
            match key {
                "sslmode" => {
                    mode = Some(value.to_string());
                    !value.starts_with("verify-")
                }
                "sslrootcert" => {
                    if value != "system" {
                        tls.roots = Some(PathBuf::from(value));
                    }
                    false
                }
                _ => true,
            }
        };
        let rest = if let Some((base, query)) = url.split_once('?')
            && url.contains("://")
        {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    keep(k, &percent_decode(v))
                })
                .collect();
            let verify = matches!(mode.as_deref(), Some(m) if m.starts_with("verify-"));
            let mut query = kept.join("&");
            if verify {
                query = [query.as_str(), "sslmode=require"]
                    .into_iter()
                    .filter(|q| !q.is_empty())
                    .collect::<Vec<_>>()
                    .join("&");
            }
            if query.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{query}")
            }
        } else if url.contains("://") {
            url.to_string()
        } else {
            let mut kept: Vec<&str> = url
                .split_whitespace()
                .filter(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    keep(k, v)
                })
                .collect();
            if matches!(mode.as_deref(), Some(m) if m.starts_with("verify-")) {
                kept.push("sslmode=require");
            }
            kept.join(" ")
        };
        tls.check = match mode.as_deref() {
            Some("verify-full") => Check::Full,
            Some("verify-ca") => Check::Chain,
            Some(m) if m.starts_with("verify-") => {
                return Err(StoreError::Backend(format!(
                    "sslmode={m} is not a PostgreSQL sslmode; use disable, prefer, require, verify-ca or verify-full"
                )));
            }
            Some("require") if tls.roots.is_some() => Check::Chain,
            _ => Check::Nothing,
        };
        Ok((rest, tls))
    }

    /// The connector (used whatever the mode: with `sslmode=disable` it is never asked).
    pub(super) fn connector(&self) -> StoreResult<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Backend(format!("cannot set up TLS: {e}")))?;
        let config = match self.check {
            Check::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCheck(provider)))
                .with_no_client_auth(),
            Check::Full => builder
                .with_root_certificates(self.roots()?)
                .with_no_client_auth(),
            Check::Chain => {
                let chain =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots()?), provider)
                        .build()
                        .map_err(|e| StoreError::Backend(format!("cannot set up TLS: {e}")))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
                    .with_no_client_auth()
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    /// The trusted roots: `sslrootcert`'s, or the system's.
    fn roots(&self) -> StoreResult<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.roots {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    StoreError::Backend(format!(
                        "cannot read sslrootcert {} ({e}); give the PEM file of the CA that signed the PostgreSQL server's certificate",
                        path.display()
                    ))
                })?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| {
                        StoreError::Backend(format!(
                            "sslrootcert {} is not a PEM certificate file ({e})",
                            path.display()
                        ))
                    })?;
                    roots.add(cert).map_err(|e| {
                        StoreError::Backend(format!(
                            "sslrootcert {} holds a certificate rustls cannot use ({e})",
                            path.display()
                        ))
                    })?;
                }
                if roots.is_empty() {
                    return Err(StoreError::Backend(format!(
                        "sslrootcert {} holds no certificate; give the PEM file of the CA that signed the PostgreSQL server's certificate",
                        path.display()
                    )));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(StoreError::Backend(
                        "the system trust store holds no certificate to verify the PostgreSQL server with; name the CA with sslrootcert=FILE in the address".into(),
                    ));
                }
            }
        }
        Ok(roots)
    }
}

/// `%XX` escapes in a URL query value.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Accepts any certificate (`sslmode=require`, as libpq): the handshake's signatures are
/// still checked, so the session is encrypted to whoever holds the certificate's key.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Checks the chain but not the name (`sslmode=verify-ca`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain first and the name last, so a wrong name means the chain
        // is trusted.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_and_root_files_are_taken_off_the_address() {
        let (rest, tls) =
            PgTls::split("postgres://u@db:5432/d?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x")
                .unwrap();
        assert_eq!(
            rest,
            "postgres://u@db:5432/d?application_name=x&sslmode=require"
        );
        assert_eq!(tls.check, Check::Full);
        assert_eq!(tls.roots, Some(PathBuf::from("/etc/ca.pem")));

        let (rest, tls) = PgTls::split("host=db sslmode=verify-ca user=u").unwrap();
        assert_eq!(rest, "host=db user=u sslmode=require");
        assert_eq!(tls.check, Check::Chain);
        assert_eq!(tls.roots, None);
    }

    #[test]
    fn require_checks_nothing_unless_given_a_root() {
        let (rest, tls) = PgTls::split("postgres://u@db/d?sslmode=require").unwrap();
        assert_eq!(rest, "postgres://u@db/d?sslmode=require");
        assert_eq!(tls.check, Check::Nothing);
        let (_, tls) =
            PgTls::split("postgres://u@db/d?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(tls.check, Check::Chain);
        let (rest, tls) = PgTls::split("postgres://u@db/d").unwrap();
        assert_eq!(
            (rest.as_str(), tls.check),
            ("postgres://u@db/d", Check::Nothing)
        );
        assert!(PgTls::split("postgres://u@db/d?sslmode=verify-everything").is_err());
    }
}
