//! TLS as Apache's `X509Util` + `X509AuthenticationProvider` set it up, for both ends: key
//! and trust stores in PEM, PKCS#12 and JKS read into a rustls `ServerConfig` (the secure
//! client port) or `ClientConfig` (the client library; hostname verification as
//! `zookeeper.ssl.hostnameVerification` asks),
//! `ssl.clientAuth`, protocol and cipher-suite choice, certificate reload when the store files
//! change (`client.certReload`), and the `x509` identity a client certificate gives.
//!
//! The stores are parsed by crates (p12-keystore for PKCS#12, jks for Java KeyStores,
//! rustls-pki-types for PEM, x509-parser for the subject); what is ours is the mapping of
//! Apache's settings onto rustls and Java's `X500Principal.getName()` form of a subject.
//!
//! I/O: reading the store files (at start and on reload); no sockets.

pub mod duplex;
pub mod stream;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use log::{info, warn};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::{ClientAuth, ClientTlsConfig, StoreConfig, StoreKind, TlsConfig};
use crate::jute::data::Id;

/// Where the JDK's default trust store would be consulted, the system's CA bundle is.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How often store files are checked for changes when reloading is on.
const RELOAD_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The secure port's TLS state: the current rustls configuration, rebuilt when the store
/// files change (if `client.certReload`).
pub struct ServerTls {
    settings: TlsConfig,
    current: Arc<ServerConfig>,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
}

impl ServerTls {
    /// Reads the stores; an error names the file and what is wrong with it.
    pub fn new(settings: &TlsConfig) -> Result<ServerTls, String> {
        let current = Arc::new(server_config(settings)?);
        let stamps = store_stamps(settings);
        Ok(ServerTls { settings: settings.clone(), current, stamps, checked: Instant::now() })
    }

    /// The configuration for a connection accepted now. With reloading on, a store file
    /// that changed since the last check is read again; a store that no longer loads keeps
    /// the old configuration (with a warning), as Apache keeps its old context.
    pub fn config(&mut self, now: Instant) -> Arc<ServerConfig> {
        if self.settings.cert_reload && now.duration_since(self.checked) >= RELOAD_CHECK_EVERY {
            self.checked = now;
            let stamps = store_stamps(&self.settings);
            if stamps != self.stamps {
                self.stamps = stamps;
                match server_config(&self.settings) {
                    Ok(config) => {
                        info!("TLS: store files changed; new connections use the new certificates");
                        self.current = Arc::new(config);
                    }
                    Err(e) => warn!(
                        "TLS: store files changed but do not load ({e}); keeping the old ones"
                    ),
                }
            }
        }
        self.current.clone()
    }

    /// The identities a verified client certificate chain gives (X509AuthenticationProvider):
    /// `x509:<subject>` of the first certificate, plus `super:<subject>` when the subject is
    /// `zookeeper.X509AuthenticationProvider.superUser`. `None` if the subject is unreadable.
    pub fn identities(&self, chain: &[CertificateDer<'_>]) -> Option<Vec<Id>> {
        let subject = subject_name(chain.first()?)?;
        let mut ids = Vec::with_capacity(2);
        if self.settings.x509_super_user.as_deref() == Some(subject.as_str()) {
            ids.push(Id { scheme: "super".to_string(), id: subject.clone() });
        }
        ids.push(Id { scheme: self.settings.auth_provider.clone(), id: subject });
        Some(ids)
    }
}

fn store_stamps(settings: &TlsConfig) -> Vec<Option<SystemTime>> {
    let mut paths = vec![settings.key_store.location.as_path()];
    if let Some(trust) = &settings.trust_store {
        paths.push(trust.location.as_path());
    }
    paths.iter().map(|p| fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
}

/// Quorum TLS (`sslQuorum`): turns a peer socket into a [`duplex::PeerStream`] as the
/// accepting or the dialling side; with `sslQuorumReloadCertFiles` every new connection
/// reads the stores again if their files changed.
pub struct PeerTls {
    settings: crate::config::QuorumTlsConfig,
    /// The hosts of the `server.N` lines, which an accepted peer's certificate may name.
    hosts: Vec<String>,
    current: std::sync::Mutex<PeerConfigs>,
}

/// The rustls configurations in use, and the store files' stamps they were read at.
struct PeerConfigs {
    server: Arc<ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    stamps: Vec<Option<SystemTime>>,
}

impl PeerTls {
    /// Reads the stores; an error names the file and what is wrong with it.
    pub fn new(
        settings: &crate::config::QuorumTlsConfig,
        hosts: Vec<String>,
    ) -> Result<PeerTls, String> {
        let server = Arc::new(server_config(&settings.server)?);
        let client = Arc::new(client_config(&settings.client)?);
        let stamps = store_stamps(&settings.server);
        Ok(PeerTls {
            settings: settings.clone(),
            hosts,
            current: std::sync::Mutex::new(PeerConfigs { server, client, stamps }),
        })
    }

    fn configs(&self) -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if self.settings.reload {
            let stamps = store_stamps(&self.settings.server);
            if stamps != current.stamps {
                match (server_config(&self.settings.server), client_config(&self.settings.client)) {
                    (Ok(server), Ok(client)) => {
                        info!("quorum TLS: store files changed; new connections use them");
                        *current = PeerConfigs {
                            server: Arc::new(server),
                            client: Arc::new(client),
                            stamps,
                        };
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        warn!("quorum TLS: store files changed but do not load ({e}); keeping the old ones");
                        current.stamps = stamps;
                    }
                }
            }
        }
        (current.server.clone(), current.client.clone())
    }

    /// TLS as the accepting side; the handshake runs within the socket's timeouts. With
    /// hostname verification on (the default), the dialler's certificate must name its
    /// address, or the host of a `server.N` line that resolves to it, or with
    /// `ssl.quorum.allowReverseDnsLookup` the name its address reverse-resolves to (as
    /// Apache's ZKTrustManager checks a quorum client's certificate).
    pub fn accept(&self, tcp: std::net::TcpStream) -> std::io::Result<duplex::PeerStream> {
        let ip = tcp.peer_addr()?.ip();
        let stream = duplex::PeerStream::server(tcp, self.configs().0)?;
        if self.settings.client.hostname_verification {
            self.check_peer_name(&stream, ip)?;
        }
        Ok(stream)
    }

    fn check_peer_name(
        &self,
        stream: &duplex::PeerStream,
        ip: std::net::IpAddr,
    ) -> std::io::Result<()> {
        use std::net::ToSocketAddrs;
        let chain = stream.peer_certificates().unwrap_or_default();
        // No certificate (ssl.quorum.clientAuth want/none): nothing to check.
        let Some(leaf) = chain.first() else { return Ok(()) };
        let mut names = vec![rustls_pki_types::ServerName::IpAddress(ip.into())];
        for host in &self.hosts {
            let resolves_here =
                (host.as_str(), 0).to_socket_addrs().is_ok_and(|mut a| a.any(|a| a.ip() == ip));
            if resolves_here {
                if let Ok(name) = server_name(host) {
                    names.push(name);
                }
            }
        }
        if self.settings.reverse_dns {
            if let Some(name) = reverse_dns(ip).and_then(|h| server_name(&h).ok()) {
                names.push(name);
            }
        }
        let named = match rustls::server::ParsedCertificate::try_from(leaf) {
            Ok(parsed) => {
                names.iter().any(|n| rustls::client::verify_server_name(&parsed, n).is_ok())
            }
            // webpki cannot read X.509 v1: Java's verifier falls back to the CN.
            Err(_) => names.iter().any(|n| V1Check::names(leaf, n)),
        };
        if named {
            Ok(())
        } else {
            let wanted: Vec<String> = names.iter().map(|n| n.to_str().into_owned()).collect();
            Err(std::io::Error::other(format!(
                "the peer's certificate names none of {wanted:?} (ssl.quorum.hostnameVerification)"
            )))
        }
    }

    /// TLS to the peer at `host` (its `server.N` host, which its certificate must name
    /// unless `ssl.quorum.hostnameVerification=false`).
    pub fn dial(
        &self,
        tcp: std::net::TcpStream,
        host: &str,
    ) -> std::io::Result<duplex::PeerStream> {
        let name = server_name(host).map_err(std::io::Error::other)?;
        duplex::PeerStream::client(tcp, self.configs().1, name)
    }
}

/// The rustls configuration the settings describe.
pub fn server_config(settings: &TlsConfig) -> Result<ServerConfig, String> {
    let provider = Arc::new(provider(settings.cipher_suites.as_deref())?);
    let supported = provider.signature_verification_algorithms;
    let versions = versions(&settings.protocols);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS protocols {:?}: {e}", settings.protocols))?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = match &settings.trust_store {
                Some(store) => trust_store(store)?,
                None => system_roots()?,
            };
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier =
                if auth == ClientAuth::Want { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| format!("TLS trust store: {e}"))?;
            let anchors = match &settings.trust_store {
                Some(store) => trust_certificates(store)?,
                None => Vec::new(),
            };
            let verifier =
                Arc::new(V1Tolerant { inner: verifier, v1: V1Check { anchors, supported } });
            builder.with_client_cert_verifier(verifier)
        }
    };
    let (chain, key) = key_store(&settings.key_store)?;
    let location = settings.key_store.location.display();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{location}: unusable private key ({e})"))?;
    let certified = rustls::sign::CertifiedKey::new(chain, signing);
    // A key that does not fit its certificate is refused; a certificate webpki cannot read
    // (X.509 v1, which Java and kazoo's harness issue) is served as it is.
    if let Err(rustls::Error::InconsistentKeys(e)) = certified.keys_match() {
        return Err(format!("{location}: the key does not fit the certificate ({e:?})"));
    }
    let resolver = rustls::sign::SingleCertAndKey::from(certified);
    Ok(builder.with_cert_resolver(Arc::new(resolver)))
}

/// The rustls client configuration the settings describe.
pub fn client_config(settings: &ClientTlsConfig) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(provider(settings.cipher_suites.as_deref())?);
    let supported = provider.signature_verification_algorithms;
    let versions = versions(&settings.protocols);
    let roots = match &settings.trust_store {
        Some(store) => trust_store(store)?,
        None => system_roots()?,
    };
    let anchors = match &settings.trust_store {
        Some(store) => trust_certificates(store)?,
        None => Vec::new(),
    };
    let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("TLS trust store: {e}"))?;
    let verifier = Arc::new(ServerCheck {
        inner,
        verify_name: settings.hostname_verification,
        v1: V1Check { anchors, supported },
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS protocols {:?}: {e}", settings.protocols))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match &settings.key_store {
        None => Ok(builder.with_no_client_auth()),
        Some(store) => {
            // As for the server's own certificate: a v1 certificate (kazoo's harness, Java's
            // keytool -v1) is presented as it is; only a key that does not fit is refused.
            let (chain, key) = key_store(store)?;
            let location = store.location.display();
            let signing = provider
                .key_provider
                .load_private_key(key)
                .map_err(|e| format!("{location}: unusable private key ({e})"))?;
            let certified = rustls::sign::CertifiedKey::new(chain, signing);
            if let Err(rustls::Error::InconsistentKeys(e)) = certified.keys_match() {
                return Err(format!("{location}: the key does not fit the certificate ({e:?})"));
            }
            Ok(builder.with_client_cert_resolver(Arc::new(OneClientCert(Arc::new(certified)))))
        }
    }
}

/// The client's one certificate, offered whenever the server asks.
#[derive(Debug)]
struct OneClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for OneClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The name a client checks the server's certificate against: the host as dialled (an IP
/// address or a DNS name).
pub fn server_name(host: &str) -> Result<rustls_pki_types::ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host} is not a valid TLS server name ({e})"))
}

fn versions(protocols: &[&str]) -> Vec<&'static SupportedProtocolVersion> {
    protocols
        .iter()
        .map(|p| if *p == "TLSv1.3" { &rustls::version::TLS13 } else { &rustls::version::TLS12 })
        .collect()
}

/// rustls' ring provider, its cipher suites narrowed to `ssl.ciphersuites` if set (Java and
/// IANA names; TLS 1.3 suites also as rustls spells them, `TLS13_...`).
fn provider(names: Option<&[String]>) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    let Some(names) = names else { return Ok(provider) };
    let known = |suite: &rustls::SupportedCipherSuite| {
        let ours = format!("{:?}", suite.suite());
        let java = ours.replacen("TLS13_", "TLS_", 1);
        names.iter().any(|n| *n == ours || *n == java)
    };
    for name in names {
        let offered = provider.cipher_suites.iter().any(|s| {
            let ours = format!("{:?}", s.suite());
            *name == ours || *name == ours.replacen("TLS13_", "TLS_", 1)
        });
        if !offered {
            warn!("ssl.ciphersuites: {name} is not offered by rustls; ignored");
        }
    }
    provider.cipher_suites.retain(known);
    if provider.cipher_suites.is_empty() {
        return Err(format!("ssl.ciphersuites {names:?}: rustls offers none of these"));
    }
    Ok(provider)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// A key store's certificate chain and private key.
fn key_store(
    store: &StoreConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let path = &store.location;
    let bytes = read(path)?;
    let what = |e: String| format!("{}: {e}", path.display());
    match store.kind {
        StoreKind::Pem => {
            let chain = pem_certificates(&bytes).map_err(what)?;
            let key = match encrypted_pem_key(&bytes, &store.password).map_err(what)? {
                Some(key) => key,
                None if bytes.windows(9).any(|w| w == b"ENCRYPTED") => {
                    // OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` keys: Java's PemReader
                    // refuses them too.
                    return Err(what(
                        "an encrypted key must be PKCS#8 (BEGIN ENCRYPTED PRIVATE KEY)".into(),
                    ));
                }
                None => PrivateKeyDer::from_pem_slice(&bytes)
                    .map_err(|e| what(format!("no private key ({e})")))?,
            };
            if chain.is_empty() {
                return Err(what("no certificate".to_string()));
            }
            Ok((chain, key))
        }
        StoreKind::Pkcs12 => {
            let policy = p12_keystore::Pkcs12ImportPolicy::Relaxed;
            let ks = p12_keystore::KeyStore::from_pkcs12(&bytes, &store.password, policy)
                .map_err(|e| what(format!("not a PKCS#12 store with this password ({e:?})")))?;
            let (_, chain) =
                ks.private_key_chain().ok_or_else(|| what("no private key".to_string()))?;
            let certs: Vec<CertificateDer<'static>> =
                chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
            if certs.is_empty() {
                return Err(what("no certificate for the private key".to_string()));
            }
            let key = PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec());
            Ok((certs, PrivateKeyDer::Pkcs8(key)))
        }
        StoreKind::Jks => {
            let mut ks = jks::KeyStore::new();
            ks.load(bytes.as_slice(), store.password.as_bytes())
                .map_err(|e| what(format!("not a JKS store with this password ({e:?})")))?;
            let alias = ks
                .aliases()
                .into_iter()
                .find(|a| ks.is_private_key_entry(a))
                .ok_or_else(|| what("no private key entry".to_string()))?;
            // Apache opens the key with the store's password.
            let entry = ks
                .get_private_key_entry(&alias, store.password.as_bytes())
                .map_err(|e| what(format!("private key {alias}: {e:?}")))?;
            let certs: Vec<CertificateDer<'static>> = entry
                .certificate_chain
                .iter()
                .map(|c| CertificateDer::from(c.content.clone()))
                .collect();
            if certs.is_empty() {
                return Err(what(format!("private key {alias} has no certificate")));
            }
            Ok((certs, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.private_key))))
        }
    }
}

/// A trust store's certificates as rustls roots.
fn trust_store(store: &StoreConfig) -> Result<RootCertStore, String> {
    let certs = trust_certificates(store)?;
    roots(certs).map_err(|e| format!("{}: {e}", store.location.display()))
}

/// A trust store's certificates.
fn trust_certificates(store: &StoreConfig) -> Result<Vec<CertificateDer<'static>>, String> {
    let path = &store.location;
    let bytes = read(path)?;
    let what = |e: String| format!("{}: {e}", path.display());
    let certs: Vec<CertificateDer<'static>> = match store.kind {
        StoreKind::Pem => pem_certificates(&bytes).map_err(what)?,
        StoreKind::Pkcs12 => {
            let policy = p12_keystore::Pkcs12ImportPolicy::Raw;
            let ks = p12_keystore::KeyStore::from_pkcs12(&bytes, &store.password, policy)
                .map_err(|e| what(format!("not a PKCS#12 store with this password ({e:?})")))?;
            let mut certs = Vec::new();
            for (_, entry) in ks.entries() {
                match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        certs.push(CertificateDer::from(c.as_der().to_vec()))
                    }
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => certs.extend(
                        chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())),
                    ),
                    p12_keystore::KeyStoreEntry::Secret(_) => {}
                }
            }
            certs
        }
        StoreKind::Jks => {
            let mut ks = jks::KeyStore::new();
            ks.load(bytes.as_slice(), store.password.as_bytes())
                .map_err(|e| what(format!("not a JKS store with this password ({e:?})")))?;
            let mut certs = Vec::new();
            for alias in ks.aliases() {
                if let Ok(entry) = ks.get_trusted_certificate_entry(&alias) {
                    certs.push(CertificateDer::from(entry.certificate.content));
                } else if let Ok(chain) = ks.get_private_key_entry_certificate_chain(&alias) {
                    certs.extend(chain.into_iter().map(|c| CertificateDer::from(c.content)));
                }
            }
            certs
        }
    };
    Ok(certs)
}

/// Java accepts X.509 v1 certificates (kazoo's test harness issues them); webpki does not.
/// The verifiers below defer to webpki and, only for a v1 end-entity certificate issued
/// directly by a trust anchor, check the anchor's signature and the validity period here;
/// the handshake signature is then checked against the certificate's key.
#[derive(Debug)]
struct V1Check {
    anchors: Vec<CertificateDer<'static>>,
    supported: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl V1Check {
    /// `v1()` for a v1 certificate, else `other()` (webpki's answer).
    fn or_else<T>(
        &self,
        cert: &CertificateDer<'_>,
        v1: impl FnOnce() -> T,
        other: impl FnOnce() -> T,
    ) -> T {
        if V1Check::is_v1(cert) {
            v1()
        } else {
            other()
        }
    }

    fn is_v1(cert: &CertificateDer<'_>) -> bool {
        use x509_parser::prelude::{FromDer, X509Certificate, X509Version};
        X509Certificate::from_der(cert.as_ref()).is_ok_and(|(_, c)| c.version() == X509Version::V1)
    }

    fn verify(&self, cert: &CertificateDer<'_>, now: rustls_pki_types::UnixTime) -> bool {
        use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};
        let Ok((_, leaf)) = X509Certificate::from_der(cert.as_ref()) else { return false };
        let Ok(at) = ASN1Time::from_timestamp(now.as_secs() as i64) else { return false };
        if !leaf.validity().is_valid_at(at) {
            return false;
        }
        self.anchors.iter().any(|anchor| {
            X509Certificate::from_der(anchor.as_ref()).is_ok_and(|(_, ca)| {
                ca.subject() == leaf.issuer()
                    && leaf.verify_signature(Some(ca.public_key())).is_ok()
            })
        })
    }

    /// Whether a v1 certificate (no subjectAltName) names `name` as its common name, as
    /// Java's hostname verifier falls back to the CN.
    fn names(cert: &CertificateDer<'_>, name: &rustls_pki_types::ServerName<'_>) -> bool {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let Ok((_, c)) = X509Certificate::from_der(cert.as_ref()) else { return false };
        let wanted = name.to_str();
        let named = c
            .subject()
            .iter_common_name()
            .any(|cn| cn.as_str().is_ok_and(|v| v == wanted.as_ref()));
        named
    }

    /// A TLS 1.2 handshake signature by a v1 certificate's key: the scheme's verification
    /// algorithms are tried on the key (one of the wrong key type never verifies).
    fn tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
        let (_, c) = X509Certificate::from_der(cert.as_ref()).map_err(|_| bad.clone())?;
        let key = &c.public_key().subject_public_key.data;
        let algorithms = self
            .supported
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(bad.clone())?;
        if algorithms.iter().any(|alg| alg.verify_signature(key, message, dss.signature()).is_ok())
        {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        } else {
            Err(bad)
        }
    }

    fn tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let bad = rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding);
        let (_, c) = X509Certificate::from_der(cert.as_ref()).map_err(|_| bad.clone())?;
        let spki = rustls_pki_types::SubjectPublicKeyInfoDer::from(c.public_key().raw.to_vec());
        rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.supported)
    }
}

/// Client certificates: webpki, plus [`V1Check`].
#[derive(Debug)]
struct V1Tolerant {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    v1: V1Check,
}

/// The handshake-signature methods both v1-tolerant verifiers share (a client's and a
/// server's verifier trait declare them alike): [`V1Check`] for a v1 certificate, the inner
/// webpki verifier otherwise.
macro_rules! v1_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.v1.or_else(
                cert,
                || self.v1.tls12_signature(message, cert, dss),
                || self.inner.verify_tls12_signature(message, cert, dss),
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            self.v1.or_else(
                cert,
                || self.v1.tls13_signature(message, cert, dss),
                || self.inner.verify_tls13_signature(message, cert, dss),
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    };
}

impl rustls::server::danger::ClientCertVerifier for V1Tolerant {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        match self.inner.verify_client_cert(end_entity, intermediates, now) {
            Err(_) if V1Check::is_v1(end_entity) && self.v1.verify(end_entity, now) => {
                Ok(rustls::server::danger::ClientCertVerified::assertion())
            }
            other => other,
        }
    }

    v1_signature_checks!();
}

/// Server certificates, for a client: webpki, the name check skipped when hostname
/// verification is off (`zookeeper.ssl.hostnameVerification=false`), plus [`V1Check`].
#[derive(Debug)]
struct ServerCheck {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    verify_name: bool,
    v1: V1Check,
}

impl rustls::client::danger::ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        let ok = rustls::client::danger::ServerCertVerified::assertion;
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // webpki checks the chain before the name: only the name is wrong.
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) if !self.verify_name => Ok(ok()),
            Err(_)
                if V1Check::is_v1(end_entity)
                    && self.v1.verify(end_entity, now)
                    && (!self.verify_name || V1Check::names(end_entity, server_name)) =>
            {
                Ok(ok())
            }
            other => other,
        }
    }

    v1_signature_checks!();
}

fn system_roots() -> Result<RootCertStore, String> {
    let bytes = read(Path::new(SYSTEM_CA_BUNDLE))
        .map_err(|e| format!("no ssl.trustStore.location and no system CA bundle ({e})"))?;
    roots(pem_certificates(&bytes)?)
}

fn roots(certs: Vec<CertificateDer<'static>>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if ignored > 0 {
        warn!("TLS trust store: {ignored} certificates could not be parsed and are ignored");
    }
    if added == 0 {
        return Err("no usable certificate".to_string());
    }
    Ok(roots)
}

/// The host name `ip` reverse-resolves to (getnameinfo with NI_NAMEREQD), if any.
fn reverse_dns(ip: std::net::IpAddr) -> Option<String> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        std::net::IpAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in>(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::IpAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: v6.octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: as above.
            unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in6>(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: `storage` holds a socket address of `len` bytes; `host` is a writable buffer of
    // the length given, NUL-terminated by getnameinfo on success; no service is asked for.
    let rc = unsafe {
        libc::getnameinfo(
            (&raw const storage).cast(),
            len as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    name.to_str().ok().map(str::to_owned)
}

/// The `ENCRYPTED PRIVATE KEY` of a PEM key store (PKCS#8, PBES2), decrypted with the store's
/// password (`ssl.keyStore.password`), as Java's PemReader does; `None` without one.
fn encrypted_pem_key(
    bytes: &[u8],
    password: &str,
) -> Result<Option<PrivateKeyDer<'static>>, String> {
    use base64::Engine;
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(bytes);
    let Some(start) = text.find(BEGIN) else { return Ok(None) };
    let body = &text[start + BEGIN.len()..];
    let end = body.find(END).ok_or("an ENCRYPTED PRIVATE KEY block has no end")?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the encrypted private key is not base64 ({e})"))?;
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| format!("the encrypted private key is not PKCS#8 ({e})"))?;
    if password.is_empty() {
        return Err("the private key is encrypted and the key store has no password".into());
    }
    let plain = info
        .decrypt(password)
        .map_err(|e| format!("cannot decrypt the private key with this password ({e})"))?;
    let key = rustls_pki_types::PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec());
    Ok(Some(PrivateKeyDer::Pkcs8(key)))
}

fn pem_certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate ({e})"))
}

/// A certificate's subject as Java's `X500Principal.getName()` (RFC 2253) writes it: the
/// RDNs last first, joined by `,`; multi-valued RDNs joined by `+`; the RFC's keywords for
/// known attribute types and dotted OIDs for the rest; string values escaped, other values
/// as `#` and the hex of their DER.
pub fn subject_name(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.subject().iter() {
        let mut parts = Vec::new();
        for atv in rdn.iter() {
            let oid = atv.attr_type().to_id_string();
            let key = rfc2253_keyword(&oid).map_or(oid, str::to_string);
            let value = match atv.as_str() {
                Ok(s) => escape_rfc2253(s),
                Err(_) => format!("#{}", hex(atv.attr_value().as_bytes())),
            };
            parts.push(format!("{key}={value}"));
        }
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// RFC 2253's keywords (Java also writes these; everything else as a dotted OID).
fn rfc2253_keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_dns_names_the_loopback_address() {
        // /etc/hosts maps 127.0.0.1 to localhost on every Debian machine.
        assert_eq!(reverse_dns("127.0.0.1".parse().unwrap()).as_deref(), Some("localhost"));
    }

    #[test]
    fn rfc2253_escapes_as_java_does() {
        assert_eq!(escape_rfc2253("client"), "client");
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253("#x "), "\\#x\\ ");
        assert_eq!(escape_rfc2253(" a\"b;<>\\"), "\\ a\\\"b\\;\\<\\>\\\\");
    }
}
