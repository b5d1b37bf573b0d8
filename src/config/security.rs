//! The security settings' types: key and trust stores, client-port and quorum TLS, client
//! SASL and enforced authentication, as `settings` builds them from `ssl.*`, `ssl.quorum.*`,
//! the JAAS file and `enforce.auth.*`, and as `config::client` builds the client's.

use std::path::PathBuf;

/// A key or trust store file: `ssl.keyStore.*` or `ssl.trustStore.*` (X509Util).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `.location`.
    pub location: PathBuf,
    /// `.password` (or the content of `.passwordPath`); empty when unset.
    pub password: String,
    /// `.type`, or what the file name's extension says (KeyStoreFileType.fromFilename).
    pub kind: StoreKind,
}

/// The store formats rzk reads (Apache's `KeyStoreFileType`; BCFKS is not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// PEM: certificates and (for a key store) one private key.
    Pem,
    /// PKCS#12 (`.p12`, `.pfx`).
    Pkcs12,
    /// Java KeyStore (`.jks`).
    Jks,
}

impl StoreKind {
    /// `PEM`, `PKCS12` or `JKS`, any case (KeyStoreFileType.fromPropertyValue).
    pub fn from_type_name(name: &str) -> Option<StoreKind> {
        match name.to_ascii_uppercase().as_str() {
            "PEM" => Some(StoreKind::Pem),
            "PKCS12" => Some(StoreKind::Pkcs12),
            "JKS" => Some(StoreKind::Jks),
            _ => None,
        }
    }

    /// What a store file's extension says (KeyStoreFileType.fromFilename).
    pub fn from_file_name(location: &str) -> Option<StoreKind> {
        let name = location.to_ascii_lowercase();
        if name.ends_with(".jks") {
            Some(StoreKind::Jks)
        } else if name.ends_with(".pem") {
            Some(StoreKind::Pem)
        } else if name.ends_with(".p12") || name.ends_with(".pfx") {
            Some(StoreKind::Pkcs12)
        } else {
            None
        }
    }
}

/// `ssl.clientAuth` (X509Util.ClientAuth; empty or unset is `need`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is asked for.
    None,
    /// A certificate is asked for; a client without one is still served.
    Want,
    /// A client without a trusted certificate fails the handshake.
    Need,
}

/// The TLS settings of one port (X509Util's `zookeeper.ssl.*` family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `ssl.keyStore.*`: this server's certificate chain and private key.
    pub key_store: StoreConfig,
    /// `ssl.trustStore.*`: the certificates client chains must lead to; without one, no
    /// client certificate can be verified (so `need` fails every client).
    pub trust_store: Option<StoreConfig>,
    /// `ssl.clientAuth`.
    pub client_auth: ClientAuth,
    /// TLS versions on offer, from `ssl.protocol` and `ssl.enabledProtocols`: a subset of
    /// `["TLSv1.2", "TLSv1.3"]`, never empty.
    pub protocols: Vec<&'static str>,
    /// `ssl.ciphersuites` (Java/IANA names); `None` is rustls' defaults.
    pub cipher_suites: Option<Vec<String>>,
    /// `client.certReload` (`zookeeper.client.certReload`): store files are re-read when
    /// they change, for new connections.
    pub cert_reload: bool,
    /// `ssl.authProvider`: the scheme a client certificate's subject becomes (`x509`).
    pub auth_provider: String,
    /// `zookeeper.X509AuthenticationProvider.superUser`: a subject that is also `super`.
    pub x509_super_user: Option<String>,
}

/// What a TLS client needs: the client library's `zookeeper.ssl.*` properties (ZooKeeper's
/// `ClientX509Util`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsConfig {
    /// `zookeeper.ssl.keyStore.*`: the certificate to present, if the server asks.
    pub key_store: Option<StoreConfig>,
    /// `zookeeper.ssl.trustStore.*`: what the server's chain must lead to; without one, the
    /// system's CA bundle (where Java would use the JDK's).
    pub trust_store: Option<StoreConfig>,
    /// TLS versions on offer (`zookeeper.ssl.protocol`, `zookeeper.ssl.enabledProtocols`).
    pub protocols: Vec<&'static str>,
    /// `zookeeper.ssl.ciphersuites`; `None` is rustls' defaults.
    pub cipher_suites: Option<Vec<String>>,
    /// `zookeeper.ssl.hostnameVerification` (default true): the server's certificate must
    /// name the host the client dialled.
    pub hostname_verification: bool,
}

impl ClientTlsConfig {
    /// Trusting `trust_store`, presenting no certificate, verifying host names, TLS 1.3
    /// and 1.2 with rustls' suites.
    pub fn new(trust_store: Option<StoreConfig>) -> ClientTlsConfig {
        ClientTlsConfig {
            key_store: None,
            trust_store,
            protocols: vec!["TLSv1.3", "TLSv1.2"],
            cipher_suites: None,
            hostname_verification: true,
        }
    }
}

/// Client SASL (ZooKeeperSaslServer): the JAAS `Server` section's DIGEST-MD5 users and the
/// settings around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// `user_NAME="password"` of the section's DigestLoginModule.
    pub users: std::collections::BTreeMap<String, String>,
    /// `zookeeper.superUser`: a SASL user that is also `super`.
    pub super_user: Option<String>,
    /// `kerberos.removeHostFromPrincipal`.
    pub remove_host: bool,
    /// `kerberos.removeRealmFromPrincipal`.
    pub remove_realm: bool,
    /// `allowSaslFailedClients`: a failed exchange does not close the connection.
    pub allow_failed: bool,
}

/// `enforce.auth.enabled`/`enforce.auth.schemes` (and `sessionRequireClientSASLAuth`, which
/// means `sasl`): requests from a connection with no identity of these schemes are refused.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnforceAuth {
    /// The schemes that count; empty when enforcement is off.
    pub schemes: Vec<String>,
}

/// Quorum TLS: the same stores serve as server (accepting a peer) and as client (dialling
/// one); a peer must present a certificate the trust store accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTlsConfig {
    /// The accepting side (`ssl.quorum.clientAuth`, default need).
    pub server: TlsConfig,
    /// The dialling side (`ssl.quorum.hostnameVerification`, default true: the peer's
    /// certificate must name the host of its `server.N` line).
    pub client: ClientTlsConfig,
    /// `sslQuorumReloadCertFiles`: new connections use store files changed since.
    pub reload: bool,
    /// `sslQuorum`: this server dials its peers over TLS (off, with port unification: it
    /// dials in the clear but accepts TLS too).
    pub dial: bool,
    /// `portUnification`: the election and Zab ports accept TLS and plain peers alike (for
    /// a rolling change to or from quorum TLS).
    pub port_unification: bool,
    /// `ssl.quorum.allowReverseDnsLookup` (default false, as Apache 3.9): an accepted peer's
    /// certificate may also name what its address reverse-resolves to.
    pub reverse_dns: bool,
}

/// Quorum SASL (`quorum.auth.enableSasl`, QuorumAuth): DIGEST-MD5 on every election and
/// Zab connection, before its first message. A learner (the side that dials) logs in with
/// the JAAS `QuorumLearner` section's `username`/`password`; a server (the side that
/// accepts) checks them against its `QuorumServer` section's `user_NAME="password"` entries.
#[derive(Clone, PartialEq, Eq)]
pub struct QuorumSaslConfig {
    /// `quorum.auth.learnerRequireSasl`: this server authenticates when it dials a peer
    /// (off: it dials without SASL, for rolling upgrades).
    pub learner_require: bool,
    /// `quorum.auth.serverRequireSasl`: a peer that does not authenticate is refused (off:
    /// it is let in; a failed exchange still fails on the learner's side).
    pub server_require: bool,
    /// The learner's login.
    pub learner_user: String,
    /// Its password.
    pub learner_password: String,
    /// The users a learner may log in as, with their passwords.
    pub users: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for QuorumSaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumSaslConfig")
            .field("learner_require", &self.learner_require)
            .field("server_require", &self.server_require)
            .field("learner_user", &self.learner_user)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// `*.protocol`: the TLS versions the JDK enables for it (TLSv1.3 enables 1.3 and 1.2,
/// TLSv1.2 only 1.2); `None` for a protocol rustls does not speak.
pub(crate) fn protocol_versions(value: &str) -> Option<Vec<&'static str>> {
    match value {
        "TLSv1.3" | "TLS" => Some(vec!["TLSv1.3", "TLSv1.2"]),
        "TLSv1.2" => Some(vec!["TLSv1.2"]),
        _ => None,
    }
}

/// `key` (an `*.enabledProtocols` list): the versions rustls speaks, the others logged;
/// `None` if none is left.
pub(crate) fn enabled_versions(key: &str, list: &str) -> Option<Vec<&'static str>> {
    let mut chosen = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "TLSv1.3" => chosen.push("TLSv1.3"),
            "TLSv1.2" => chosen.push("TLSv1.2"),
            other => {
                log::warn!("{key}: {other} is not offered (rustls speaks TLSv1.2 and TLSv1.3)")
            }
        }
    }
    (!chosen.is_empty()).then_some(chosen)
}

/// A comma-separated list (`*.ciphersuites`), blanks dropped.
pub(crate) fn name_list(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect()
}
