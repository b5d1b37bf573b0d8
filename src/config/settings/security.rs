//! The security keys of zoo.cfg: the secure client port's `ssl.*`, quorum TLS's
//! `sslQuorum`/`ssl.quorum.*`, the JAAS file's client SASL users and `enforce.auth.*`, quorum
//! SASL's `quorum.auth.*` and its JAAS sections; each
//! key with its default, its checks and its log line, as for the rest of `settings`.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use log::{debug, info, warn};

use super::{invalid, Setting, Settings, SUPPORTED_KEYS};
use crate::config::security::{enabled_versions, name_list, protocol_versions};
use crate::config::{
    ClientAuth, ClientTlsConfig, ConfigError, EnforceAuth, QuorumSaslConfig, QuorumTlsConfig,
    SaslConfig, StoreConfig, StoreKind, TlsConfig,
};
use crate::sasl::{digest_login, digest_users, parse_jaas, LoginModule};

/// The `ssl.*` settings of the secure client port (X509Util, SSLContextAndOptions), read
/// whether or not there is one (`None` without a secure port).
pub(super) fn tls_settings(
    s: &mut Settings,
    secure_port: bool,
) -> Result<Option<TlsConfig>, ConfigError> {
    if !secure_port {
        let tls_keys = SUPPORTED_KEYS.iter().filter(|k| {
            (k.starts_with("ssl.") && !k.starts_with("ssl.quorum."))
                || **k == "client.certReload"
                || k.starts_with("X509")
        });
        for key in tls_keys {
            if let Some(setting) = s.take(key) {
                debug!("{key}={}: there is no secureClientPort", setting.value);
            }
        }
        return Ok(None);
    }
    let key_store = store(s, "ssl.keyStore")?;
    let trust_store = store(s, "ssl.trustStore")?;
    let client_auth = client_auth(s, "ssl.clientAuth")?;
    let (protocols, cipher_suites) = protocols_and_suites(s, "ssl")?;
    for key in ["ssl.hostnameVerification", "ssl.clientHostnameVerification"] {
        if let Some(setting) = s.take(key) {
            // ClientX509Util never verifies a client's hostname on the server side.
            debug!("{key}={}: client hostnames are not verified on the client port", setting.value);
        }
    }
    if let Some(setting) = s.take("ssl.handshakeDetectionTimeoutMillis") {
        debug!(
            "ssl.handshakeDetectionTimeoutMillis={}: not used (with client.portUnification \
             rzk decides on the first byte, within the connection's own timeouts)",
            setting.value
        );
    }
    let cert_reload = s.bool("client.certReload")?.unwrap_or(false);
    let auth_provider = s.string("ssl.authProvider").unwrap_or_else(|| "x509".to_string());
    if auth_provider != "x509" {
        let reason = format!("ssl.authProvider {auth_provider}: only the x509 provider exists");
        return Err(ConfigError::Inconsistent(reason));
    }
    let x509_super_user = s.string("X509AuthenticationProvider.superUser");
    let key_store = key_store.ok_or_else(|| {
        let reason = "secureClientPort is set but ssl.keyStore.location is not";
        ConfigError::Inconsistent(reason.to_string())
    })?;
    Ok(Some(TlsConfig {
        key_store,
        trust_store,
        client_auth,
        protocols,
        cipher_suites,
        cert_reload,
        auth_provider,
        x509_super_user,
    }))
}

/// `need` (the default), `want` or `none`, any case (X509Util.ClientAuth).
fn client_auth(s: &mut Settings, key: &str) -> Result<ClientAuth, ConfigError> {
    let Some(setting) = s.take(key) else { return Ok(ClientAuth::Need) };
    match setting.value.to_ascii_lowercase().as_str() {
        "" | "need" => Ok(ClientAuth::Need),
        "want" => Ok(ClientAuth::Want),
        "none" => Ok(ClientAuth::None),
        _ => Err(invalid(key, &setting, "expected need, want or none".into())),
    }
}

/// `<prefix>.protocol`, `.enabledProtocols` and `.ciphersuites` (X509Util).
fn protocols_and_suites(
    s: &mut Settings,
    prefix: &str,
) -> Result<(Vec<&'static str>, Option<Vec<String>>), ConfigError> {
    let protocol_key = format!("{prefix}.protocol");
    let mut protocols = match s.take(&protocol_key) {
        None => vec!["TLSv1.3", "TLSv1.2"],
        Some(setting) => protocol_versions(&setting.value).ok_or_else(|| {
            invalid(&protocol_key, &setting, "rzk speaks TLSv1.2 and TLSv1.3".to_string())
        })?,
    };
    let enabled_key = format!("{prefix}.enabledProtocols");
    if let Some(setting) = s.take(&enabled_key) {
        protocols = enabled_versions(&enabled_key, &setting.value).ok_or_else(|| {
            invalid(&enabled_key, &setting, "names neither TLSv1.2 nor TLSv1.3".into())
        })?;
    }
    let cipher_suites = s.string(&format!("{prefix}.ciphersuites")).map(|l| name_list(&l));
    Ok((protocols, cipher_suites))
}

/// `sslQuorum` and `ssl.quorum.*` (QuorumX509Util): every election and Zab connection is
/// TLS with this server's key store, both ends verify the other against the trust store.
pub(super) fn quorum_tls_settings(
    s: &mut Settings,
) -> Result<Option<QuorumTlsConfig>, ConfigError> {
    let enabled = s.bool("sslQuorum")?.unwrap_or(false);
    let port_unification = s.bool("portUnification")?.unwrap_or(false);
    let reload = s.bool("sslQuorumReloadCertFiles")?.unwrap_or(false);
    let key_store = store(s, "ssl.quorum.keyStore")?;
    let trust_store = store(s, "ssl.quorum.trustStore")?;
    let (protocols, cipher_suites) = protocols_and_suites(s, "ssl.quorum")?;
    let hostname_verification = s.bool("ssl.quorum.hostnameVerification")?.unwrap_or(true);
    let reverse_dns = s.bool("ssl.quorum.allowReverseDnsLookup")?.unwrap_or(false);
    let client_auth = client_auth(s, "ssl.quorum.clientAuth")?;
    if !enabled && !port_unification {
        return Ok(None);
    }
    let key_store = key_store.ok_or_else(|| {
        let key = if enabled { "sslQuorum" } else { "portUnification" };
        let reason = format!("{key} is true but ssl.quorum.keyStore.location is not set");
        ConfigError::Inconsistent(reason)
    })?;
    let server = TlsConfig {
        key_store: key_store.clone(),
        trust_store: trust_store.clone(),
        client_auth,
        protocols: protocols.clone(),
        cipher_suites: cipher_suites.clone(),
        cert_reload: reload,
        auth_provider: "x509".to_string(),
        x509_super_user: None,
    };
    let client = ClientTlsConfig {
        key_store: Some(key_store),
        trust_store,
        protocols,
        cipher_suites,
        hostname_verification,
    };
    Ok(Some(QuorumTlsConfig {
        server,
        client,
        reload,
        dial: enabled,
        port_unification,
        reverse_dns,
    }))
}

/// The JAAS file (`java.security.auth.login.config`), read once for client and quorum SASL.
pub(super) struct Jaas {
    setting: Setting,
    sections: BTreeMap<String, Vec<LoginModule>>,
}

const JAAS_KEY: &str = "java.security.auth.login.config";

/// Reads and parses the JAAS file, if one is named.
pub(super) fn jaas(s: &mut Settings) -> Result<Option<Jaas>, ConfigError> {
    let Some(setting) = s.take(JAAS_KEY) else { return Ok(None) };
    let text = fs::read_to_string(&setting.value)
        .map_err(|e| invalid(JAAS_KEY, &setting, e.to_string()))?;
    let sections = parse_jaas(&text).map_err(|e| invalid(JAAS_KEY, &setting, e))?;
    Ok(Some(Jaas { setting, sections }))
}

/// Client SASL from the JAAS file, and enforced authentication (AuthenticationHelper).
pub(super) fn sasl_settings(
    s: &mut Settings,
    jaas: Option<&Jaas>,
) -> Result<(Option<SaslConfig>, EnforceAuth), ConfigError> {
    let section = s.string("sasl.serverconfig").unwrap_or_else(|| "Server".to_string());
    let super_user = s.string("superUser");
    let remove_host = s.bool("kerberos.removeHostFromPrincipal")?.unwrap_or(false);
    let remove_realm = s.bool("kerberos.removeRealmFromPrincipal")?.unwrap_or(false);
    let allow_failed = s.bool("allowSaslFailedClients")?.unwrap_or(false);
    let require_sasl = s.bool("sessionRequireClientSASLAuth")?.unwrap_or(false);
    let enforce = s.bool("enforce.auth.enabled")?.unwrap_or(false);
    let schemes = s.string("enforce.auth.schemes");
    let sasl = match jaas {
        None => None,
        Some(jaas) => {
            let path = &jaas.setting.value;
            match jaas.sections.get(&section).map(|m| digest_users(m)) {
                Some(Some(users)) => {
                    Some(SaslConfig { users, super_user, remove_host, remove_realm, allow_failed })
                }
                Some(None) => {
                    warn!("{path}: section {section} has no DigestLoginModule; client SASL is off (Kerberos is not supported)");
                    None
                }
                None => {
                    info!("{path}: no {section} section; client SASL is off");
                    None
                }
            }
        }
    };
    let mut enforced: Vec<String> = Vec::new();
    if require_sasl {
        enforced.push("sasl".to_string());
    } else if enforce {
        enforced = schemes
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect();
        if enforced.is_empty() {
            let reason = "enforce.auth.enabled is true but enforce.auth.schemes names no scheme";
            return Err(ConfigError::Inconsistent(reason.to_string()));
        }
    }
    for scheme in &enforced {
        let known = matches!(scheme.as_str(), "digest" | "ip" | "x509")
            || (scheme == "sasl" && sasl.is_some());
        if !known {
            let reason = format!("enforce.auth.schemes: no authentication provider for {scheme}");
            return Err(ConfigError::Inconsistent(reason));
        }
    }
    Ok((sasl, EnforceAuth { schemes: enforced }))
}

/// `<prefix>.location`, `.password`/`.passwordPath` and `.type`; `None` without a location.
fn store(s: &mut Settings, prefix: &str) -> Result<Option<StoreConfig>, ConfigError> {
    let location = s.take(&format!("{prefix}.location")).filter(|l| !l.value.is_empty());
    let password = s.string(&format!("{prefix}.password"));
    let password_path = s.take(&format!("{prefix}.passwordPath"));
    let kind = s.take(&format!("{prefix}.type"));
    let Some(location) = location else { return Ok(None) };
    let password = match (password, password_path) {
        (Some(p), _) => p,
        (None, Some(path)) => fs::read_to_string(&path.value)
            .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| invalid(&format!("{prefix}.passwordPath"), &path, e.to_string()))?,
        (None, None) => String::new(),
    };
    let kind = match kind.filter(|k| !k.value.is_empty()) {
        Some(setting) => match StoreKind::from_type_name(&setting.value) {
            Some(kind) => kind,
            None => {
                let reason = "expected PEM, PKCS12 or JKS".to_string();
                return Err(invalid(&format!("{prefix}.type"), &setting, reason));
            }
        },
        None => match StoreKind::from_file_name(&location.value) {
            Some(kind) => kind,
            None => {
                let reason =
                    format!("cannot tell the store type from the file name; set {prefix}.type");
                return Err(invalid(&format!("{prefix}.location"), &location, reason));
            }
        },
    };
    Ok(Some(StoreConfig { location: PathBuf::from(location.value), password, kind }))
}

/// Quorum SASL (QuorumPeerConfig's `quorum.auth.*` with its checks, QuorumPeer's JAAS
/// sections) and `quorum.cnxn.threads.size`.
pub(super) fn quorum_sasl_settings(
    s: &mut Settings,
    jaas: Option<&Jaas>,
) -> Result<(Option<QuorumSaslConfig>, usize), ConfigError> {
    let enabled = s.bool("quorum.auth.enableSasl")?.unwrap_or(false);
    let server_require = s.bool("quorum.auth.serverRequireSasl")?.unwrap_or(false);
    let learner_require = s.bool("quorum.auth.learnerRequireSasl")?.unwrap_or(false);
    let learner_section = s
        .string("quorum.auth.learner.saslLoginContext")
        .unwrap_or_else(|| "QuorumLearner".to_string());
    let server_section = s
        .string("quorum.auth.server.saslLoginContext")
        .unwrap_or_else(|| "QuorumServer".to_string());
    if let Some(principal) = s.string("quorum.auth.kerberos.servicePrincipal") {
        debug!("quorum.auth.kerberos.servicePrincipal={principal}: not used (DIGEST-MD5 only)");
    }
    let threads = s.int("quorum.cnxn.threads.size", 1, i64::from(i32::MAX))?.unwrap_or(20) as usize;
    let refuse = |reason: &str| Err(ConfigError::Inconsistent(reason.to_string()));
    if !enabled && server_require {
        return refuse(
            "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl",
        );
    }
    if !enabled && learner_require {
        return refuse(
            "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl",
        );
    }
    if !learner_require && server_require {
        return refuse(
            "quorum.auth.learnerRequireSasl is disabled, so cannot enable \
             quorum.auth.serverRequireSasl",
        );
    }
    if !enabled {
        return Ok((None, threads));
    }
    let Some(jaas) = jaas else {
        return refuse(
            "quorum.auth.enableSasl is true but java.security.auth.login.config is not set",
        );
    };
    let path = &jaas.setting.value;
    let section = |name: &str| {
        jaas.sections.get(name).ok_or_else(|| {
            ConfigError::Inconsistent(format!(
                "{path}: SASL-authentication failed because the specified JAAS configuration \
                 section '{name}' could not be found"
            ))
        })
    };
    let kerberos = |name: &str| {
        ConfigError::Inconsistent(format!(
            "{path}: section {name} has no DigestLoginModule (quorum Kerberos is not supported)"
        ))
    };
    let (learner_user, learner_password) =
        digest_login(section(&learner_section)?).ok_or_else(|| kerberos(&learner_section))?;
    if learner_user.is_empty() {
        return Err(invalid(
            JAAS_KEY,
            &jaas.setting,
            format!("section {learner_section} has no username"),
        ));
    }
    let users = digest_users(section(&server_section)?).ok_or_else(|| kerberos(&server_section))?;
    info!(
        "quorum SASL on (DIGEST-MD5): learner {learner_user}, {} users; learnerRequireSasl={learner_require}, serverRequireSasl={server_require}",
        users.len()
    );
    let sasl =
        QuorumSaslConfig { learner_require, server_require, learner_user, learner_password, users };
    Ok((Some(sasl), threads))
}
