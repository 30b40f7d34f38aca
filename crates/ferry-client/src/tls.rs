//! TLS with rustls and the **ring** provider, chosen explicitly.
//!
//! ferry never relies on rustls' process-wide default provider: an embedding program may have
//! both `ring` and `aws-lc-rs` compiled in, and then the default cannot be chosen
//! (kafka-wire.md §7.4). Configs are built with `ClientConfig::builder_with_provider`.
//!
//! Hostname verification can be switched off as Kafka does with an empty
//! `ssl.endpoint.identification.algorithm` (KIP-294). The chain is still verified against the
//! trust roots; only a name mismatch is forgiven ([`ChainOnlyVerifier`]).
//!
//! # References
//! - KIP-294 (hostname verification on by default), KIP-651 (PEM key and trust stores)

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::config::{ConfigError, TlsSettings};

/// The crypto provider ferry uses: ring.
#[must_use]
pub fn ferry_crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let file_err = |message: String| ConfigError::TlsFile {
        path: path.to_owned(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err("no CERTIFICATE item in the file".to_owned()));
    }
    Ok(certs)
}

/// Builds a rustls client config from Kafka-style settings.
pub fn build_client_config(
    settings: &TlsSettings,
) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let provider = ferry_crypto_provider();
    let mut roots = RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            for cert in read_certs(path)? {
                roots.add(cert).map_err(|e| ConfigError::TlsFile {
                    path: path.clone(),
                    message: format!("unusable CA certificate: {e}"),
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls {
            message: e.to_string(),
        })?;
    let builder = if settings.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| ConfigError::Tls {
                message: e.to_string(),
            })?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier { inner }))
    };
    let config = match (&settings.client_cert_file, &settings.client_key_file) {
        (Some(cert), Some(key)) => {
            let certs = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ConfigError::TlsFile {
                path: key.clone(),
                message: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ConfigError::Tls {
                    message: format!("client certificate and key do not match: {e}"),
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(ConfigError::Tls {
                message: "a client certificate needs a private key and vice versa".to_owned(),
            });
        }
    };
    Ok(Arc::new(config))
}

/// Verifies the certificate chain against the trust roots but accepts any server name
/// (Kafka's empty `ssl.endpoint.identification.algorithm`).
#[derive(Debug)]
pub struct ChainOnlyVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // WebPkiServerVerifier checks the chain first and the name last, so a name error
        // means the chain itself was accepted.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
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
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What kind of TLS failure a handshake hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate chain does not lead to a trusted CA (wrong `ca_file`).
    UnknownIssuer,
    /// The certificate is valid but does not name the host we connected to.
    NameMismatch,
    /// The certificate is otherwise invalid (expired, bad signature, wrong usage, ...).
    BadCertificate,
    /// The peer does not speak TLS: it closed the connection or sent non-TLS bytes during the
    /// handshake (typically a PLAINTEXT listener).
    NotTls,
    /// The peer speaks TLS although the connection is plaintext (a TLS alert came back as a
    /// response frame).
    PeerExpectsTls,
    /// The peer rejected us with a TLS alert (e.g. it requires a client certificate).
    PeerRejected,
    /// Another TLS error.
    Other,
}

/// Classifies an I/O error from a tokio-rustls handshake.
pub(crate) fn classify_handshake_error(err: &io::Error) -> TlsFailure {
    if let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                TlsFailure::UnknownIssuer
            }
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => TlsFailure::NameMismatch,
            rustls::Error::InvalidCertificate(_) => TlsFailure::BadCertificate,
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                TlsFailure::NotTls
            }
            rustls::Error::AlertReceived(_) => TlsFailure::PeerRejected,
            _ => TlsFailure::Other,
        };
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => TlsFailure::NotTls,
        _ => TlsFailure::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        assert_eq!(
            classify_handshake_error(&wrap(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))),
            TlsFailure::UnknownIssuer
        );
        assert_eq!(
            classify_handshake_error(&wrap(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
            ))),
            TlsFailure::NameMismatch
        );
        assert_eq!(
            classify_handshake_error(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            TlsFailure::NotTls
        );
    }

    #[test]
    fn mismatched_client_auth_files() {
        let s = TlsSettings {
            client_cert_file: Some("/x".into()),
            ..TlsSettings::default()
        };
        assert!(matches!(
            build_client_config(&s),
            Err(ConfigError::Tls { .. })
        ));
    }
}
