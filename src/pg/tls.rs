//! TLS as libpq does it: the `sslmode`s disable / allow / prefer / require /
//! verify-ca / verify-full, `sslrootcert` (a file, or `system` for the
//! machine's trusted roots), `sslcert` / `sslkey`, and libpq's rule that
//! `require` behaves as `verify-ca` when a root certificate file is there.
//! tokio-postgres knows only disable / prefer / require and no certificate
//! options, so crmbench reads them itself ([`TlsSettings::from_info`]) and
//! hands the driver a rustls connector whose certificate verifier is the
//! mode's: none for allow / prefer / require, the chain for verify-ca, the
//! chain and the host name for verify-full. [`explain_failure`] turns a failed
//! handshake into a message that names the mode and the fix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::SslMode as DriverMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conninfo::ConnInfo;
use crate::error::{Error, Result};

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS (unverified) only if the server refuses plain.
    Allow,
    /// TLS (unverified) if the server offers it, else plain. libpq's default.
    Prefer,
    /// TLS, certificate not verified (unless a root certificate file exists).
    Require,
    /// TLS, certificate chain verified against the root certificates.
    VerifyCa,
    /// TLS, chain verified and the certificate valid for the host name.
    VerifyFull,
}

impl SslMode {
    /// Read libpq's spelling.
    pub fn parse(text: &str) -> Result<SslMode> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(Error::Usage {
                    message: format!("invalid sslmode value: \"{text}\""),
                    fix: "use one of disable, allow, prefer, require, verify-ca, verify-full"
                        .into(),
                });
            }
        })
    }

    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// Where the root certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// None: the server's certificate cannot be verified.
    None,
    /// A PEM file of CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the machine's trusted roots.
    System,
}

/// The TLS options of one connection string, libpq's defaults applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// The mode asked for.
    pub requested: SslMode,
    /// The mode in force (`require` becomes `verify-ca` with a root file).
    pub mode: SslMode,
    /// Root certificates.
    pub root: RootCert,
    /// Client certificate and key, when both files are there.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Send the host name in the handshake (`sslsni`, default on).
    pub sni: bool,
}

impl TlsSettings {
    /// No TLS: the private server, over its Unix socket.
    pub fn disabled() -> TlsSettings {
        TlsSettings {
            requested: SslMode::Disable,
            mode: SslMode::Disable,
            root: RootCert::None,
            client: None,
            sni: true,
        }
    }

    /// The settings of `info` (after the environment was applied), with
    /// libpq's default files under `home`/.postgresql.
    pub fn from_info(info: &ConnInfo, home: Option<&Path>) -> Result<TlsSettings> {
        let requested = SslMode::parse(info.get("sslmode").unwrap_or("prefer"))?;
        let default_file = |name: &str| home.map(|h| h.join(".postgresql").join(name));
        let root_path = match info.get("sslrootcert") {
            Some("system") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => default_file("root.crt"),
        };
        let mut mode = requested;
        let root = if info.get("sslrootcert") == Some("system") {
            if !matches!(requested, SslMode::VerifyFull | SslMode::Disable) {
                return Err(Error::Usage {
                    message: format!(
                        "weak sslmode \"{}\" may not be used with sslrootcert=system (use \
                         \"verify-full\")",
                        requested.as_str()
                    ),
                    fix: "add sslmode=verify-full to the connection string".into(),
                });
            }
            RootCert::System
        } else {
            match root_path {
                Some(p) if p.is_file() => RootCert::File(p),
                _ => RootCert::None,
            }
        };
        // libpq: "if a root CA file exists, require behaves as verify-ca".
        if requested == SslMode::Require && matches!(root, RootCert::File(_)) {
            mode = SslMode::VerifyCa;
        }
        if mode.verifies() && root == RootCert::None {
            let path = info
                .get("sslrootcert")
                .map(PathBuf::from)
                .or_else(|| default_file("root.crt"))
                .unwrap_or_else(|| PathBuf::from("~/.postgresql/root.crt"));
            return Err(Error::Usage {
                message: format!(
                    "root certificate file \"{}\" does not exist, and sslmode={} verifies the \
                     server's certificate",
                    path.display(),
                    mode.as_str()
                ),
                fix: "either provide the file (sslrootcert=PATH to the CA's certificate), use \
                      the system's trusted roots with sslrootcert=system, or change sslmode to \
                      disable server certificate verification (require)"
                    .into(),
            });
        }
        let cert = info
            .get("sslcert")
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.crt"));
        let key = info
            .get("sslkey")
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.key"));
        let client = client_files(info, cert, key)?;
        Ok(TlsSettings {
            requested,
            mode,
            root,
            client,
            sni: info.get("sslsni") != Some("0"),
        })
    }

    /// The mode handed to the driver: it negotiates, the verifier verifies.
    pub fn driver_mode(&self) -> DriverMode {
        match self.mode {
            // allow starts plain; crate::pg::connect retries with TLS.
            SslMode::Disable | SslMode::Allow => DriverMode::Disable,
            SslMode::Prefer => DriverMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverMode::Require,
        }
    }
}

/// The client certificate pair: both named files must exist; libpq's default
/// files are used only when both are there.
fn client_files(
    info: &ConnInfo,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<(PathBuf, PathBuf)>> {
    let (Some(cert), Some(key)) = (cert, key) else {
        return Ok(None);
    };
    for (option, path) in [("sslcert", &cert), ("sslkey", &key)] {
        if info.get(option).is_some() && !path.is_file() {
            return Err(Error::Usage {
                message: format!("{option} file \"{}\" does not exist", path.display()),
                fix: format!("correct {option}=PATH, or remove it"),
            });
        }
    }
    Ok((cert.is_file() && key.is_file()).then_some((cert, key)))
}

/// A connector configured for one [`TlsSettings`], built once (files read
/// once) and shared by every connection of a target.
#[derive(Clone)]
pub struct Tls {
    settings: TlsSettings,
    connector: MakeRustlsConnect,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tls({:?})", self.settings)
    }
}

impl Tls {
    /// No TLS (the connector is never used: the driver mode is disable).
    pub fn none() -> Tls {
        static NONE: OnceLock<MakeRustlsConnect> = OnceLock::new();
        let connector = NONE.get_or_init(|| {
            let provider = provider();
            let verifier = Arc::new(ModeVerifier::unverified(provider.clone()));
            MakeRustlsConnect::new(base_config(provider, verifier))
        });
        Tls {
            settings: TlsSettings::disabled(),
            connector: connector.clone(),
        }
    }

    /// Build the connector: read the root and client files, choose the
    /// verifier of the mode.
    pub fn new(settings: TlsSettings) -> Result<Tls> {
        let provider = provider();
        let verifier: Arc<dyn ServerCertVerifier> = match (&settings.root, settings.mode) {
            (RootCert::None, _) | (_, SslMode::Disable | SslMode::Allow | SslMode::Prefer) => {
                Arc::new(ModeVerifier::unverified(provider.clone()))
            }
            (root, mode) => {
                let roots = Arc::new(root_store(root)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| Error::Usage {
                        message: format!("cannot use the root certificates: {e}"),
                        fix: "give sslrootcert a PEM file of CA certificates".into(),
                    })?;
                Arc::new(ModeVerifier {
                    provider: provider.clone(),
                    chain: Some(webpki),
                    check_name: mode == SslMode::VerifyFull,
                })
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| internal(format!("TLS protocol versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &settings.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let (chain, private) = client_identity(cert, key)?;
                builder
                    .with_client_auth_cert(chain, private)
                    .map_err(|e| Error::Usage {
                        message: format!(
                            "the client certificate {} and key {} do not fit together: {e}",
                            cert.display(),
                            key.display()
                        ),
                        fix: "check sslcert and sslkey".into(),
                    })?
            }
        };
        config.enable_sni = settings.sni;
        Ok(Tls {
            settings,
            connector: MakeRustlsConnect::new(config),
        })
    }

    /// The settings this connector was built from.
    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The driver's connector.
    pub fn connector(&self) -> MakeRustlsConnect {
        self.connector.clone()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn internal(message: String) -> Error {
    Error::Internal {
        message,
        fix: String::new(),
    }
}

fn base_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> ClientConfig {
    match ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(b) => b
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
        // The ring provider supports the default versions; unreachable.
        Err(_) => ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    }
}

fn root_store(root: &RootCert) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::None => {}
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::Usage {
                    message: "sslrootcert=system: no trusted root certificates found on this \
                              machine"
                        .into(),
                    fix: "install the ca-certificates package, or give sslrootcert=PATH".into(),
                });
            }
        }
        RootCert::File(path) => {
            let certs = read_certs(path)?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::Usage {
                    message: format!("no certificate could be read from {}", path.display()),
                    fix: "give sslrootcert a PEM file of CA certificates".into(),
                });
            }
        }
    }
    Ok(store)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let unreadable = |e: String| Error::Usage {
        message: format!("cannot read the certificate file {}: {e}", path.display()),
        fix: "give a PEM file (-----BEGIN CERTIFICATE-----)".into(),
    };
    CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| unreadable(e.to_string()))
}

fn client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = read_certs(cert)?;
    // libpq refuses a key others can read; so does crmbench.
    if let Ok(meta) = std::fs::metadata(key) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::Usage {
                message: format!(
                    "private key file \"{}\" has group or world access",
                    key.display()
                ),
                fix: format!("chmod 0600 {}", key.display()),
            });
        }
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::Usage {
        message: format!("cannot read the private key {}: {e}", key.display()),
        fix: "give sslkey an unencrypted PEM key (sslpassword is not supported)".into(),
    })?;
    Ok((chain, key))
}

/// The server certificate check of every mode. `chain: None` (allow /
/// prefer / require without a root file): encryption without
/// authentication of the server, as libpq. With a chain: verify-ca (chain
/// only, a wrong name forgiven) and verify-full (chain and name), webpki's
/// verification. Handshake signatures are checked in every mode (the
/// session keys must come from the certificate's key), with the provider's
/// algorithms — the ones the webpki verifier is built with too.
#[derive(Debug)]
struct ModeVerifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
}

impl ModeVerifier {
    fn unverified(provider: Arc<CryptoProvider>) -> ModeVerifier {
        ModeVerifier {
            provider,
            chain: None,
            check_name: false,
        }
    }
}

impl ServerCertVerifier for ModeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A connection that failed during TLS negotiation, as a message naming the
/// mode and the fix; `None` when the failure was not about TLS.
pub fn explain_failure(
    target: &str,
    host: &str,
    settings: &TlsSettings,
    err: &tokio_postgres::Error,
) -> Option<Error> {
    let mode = settings.mode.as_str();
    let tls = |problem: String, fix: String| {
        Some(Error::Tls {
            target: target.into(),
            problem,
            fix,
        })
    };
    if crate::error::describe_chain(err).contains("server does not support TLS") {
        return tls(
            format!("server does not support SSL, but sslmode={mode}"),
            "turn ssl on in the server's postgresql.conf, or use sslmode=prefer (or disable) \
             to connect without encryption"
                .into(),
        );
    }
    let cert_error = rustls_error(err)?;
    match cert_error {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            presented,
            ..
        }) => tls(
            format!(
                "certificate is not valid for host \"{host}\" (it names {}; sslmode={mode})",
                if presented.is_empty() {
                    "no host".into()
                } else {
                    presented.join(", ")
                }
            ),
            "use verify-ca or connect by the certificate's name".into(),
        ),
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => tls(
            format!("certificate is not valid for host \"{host}\" (sslmode={mode})"),
            "use verify-ca or connect by the certificate's name".into(),
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => tls(
            format!(
                "the server's certificate is not signed by a CA in {} (sslmode={mode})",
                match &settings.root {
                    RootCert::File(p) => p.display().to_string(),
                    _ => "the system's trusted roots".into(),
                }
            ),
            "give the CA that signed the server's certificate with sslrootcert=PATH, or use \
             sslmode=require to encrypt without verifying"
                .into(),
        ),
        other => tls(
            format!("TLS handshake failed (sslmode={mode}): {other}"),
            "check the server's certificate, sslrootcert and sslmode".into(),
        ),
    }
}

/// The rustls error inside a driver error, if any: tokio-rustls wraps it in
/// an `io::Error`, whose `source()` skips it, so look inside each
/// `io::Error` by hand.
fn rustls_error(err: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str, home: Option<&Path>) -> Result<TlsSettings> {
        TlsSettings::from_info(&ConnInfo::parse(text)?, home)
    }

    #[test]
    fn prefer_is_the_default_and_require_without_root_does_not_verify() {
        let s = settings("host=h", None).unwrap();
        assert_eq!(s.mode, SslMode::Prefer);
        assert_eq!(s.driver_mode(), DriverMode::Prefer);
        let s = settings("host=h sslmode=require", None).unwrap();
        assert_eq!((s.mode, s.root.clone()), (SslMode::Require, RootCert::None));
        assert_eq!(
            settings("host=h sslmode=allow", None)
                .unwrap()
                .driver_mode(),
            DriverMode::Disable
        );
    }

    #[test]
    fn require_with_a_root_file_is_verify_ca() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".postgresql")).unwrap();
        std::fs::write(dir.path().join(".postgresql/root.crt"), "x").unwrap();
        let s = settings("host=h sslmode=require", Some(dir.path())).unwrap();
        assert_eq!(s.mode, SslMode::VerifyCa);
        assert_eq!(s.requested, SslMode::Require);
    }

    #[test]
    fn verify_without_a_root_file_names_the_file_and_the_fix() {
        let err = settings(
            "host=h sslmode=verify-full sslrootcert=/nonexistent/ca.pem",
            None,
        )
        .unwrap_err();
        let text = format!("{err} {}", err.fix().unwrap_or_default());
        assert!(
            text.contains("\"/nonexistent/ca.pem\" does not exist"),
            "{text}"
        );
        assert!(text.contains("sslrootcert=system"), "{text}");
        let err = settings("host=h sslmode=verify-ca", Some(Path::new("/home/x"))).unwrap_err();
        assert!(
            err.to_string().contains("/home/x/.postgresql/root.crt"),
            "{err}"
        );
    }

    #[test]
    fn system_roots_need_verify_full_and_bad_modes_are_refused() {
        let err = settings("host=h sslrootcert=system sslmode=require", None).unwrap_err();
        assert!(
            err.to_string().contains("weak sslmode \"require\""),
            "{err}"
        );
        let s = settings("host=h sslrootcert=system sslmode=verify-full", None).unwrap();
        assert_eq!(s.root, RootCert::System);
        assert!(settings("host=h sslmode=verify_full", None).is_err());
    }

    #[test]
    fn named_client_files_must_exist() {
        let err = settings(
            "host=h sslcert=/nonexistent.crt sslkey=/nonexistent.key",
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("sslcert file"), "{err}");
    }
}
