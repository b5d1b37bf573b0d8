//! The client's configuration, as Apache's `ZKClientConfig` reads it: the properties of a
//! `-client-configuration` file over `-D` system properties, turned into what the client
//! library needs for TLS (`zookeeper.client.secure`, `zookeeper.ssl.*`) and SASL (the JAAS
//! file's `Client` section, `zookeeper.sasl.*`).
//!
//! I/O: reads the JAAS file and `passwordPath` files it names; the store files themselves
//! are read when the client connects.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use super::security::{enabled_versions, name_list, protocol_versions};
use super::{ClientTlsConfig, StoreConfig, StoreKind};
use crate::sasl::{digest_login, parse_jaas};

/// The JAAS login configuration file (a Java system property).
pub const JAAS_PROPERTY: &str = "java.security.auth.login.config";

/// Security settings for one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSecurity {
    /// `zookeeper.client.secure=true`: TLS with these settings.
    pub tls: Option<ClientTlsConfig>,
    /// SASL DIGEST-MD5 credentials from the JAAS `Client` section.
    pub sasl: Option<SaslLogin>,
}

/// A DIGEST-MD5 login (DigestLoginModule's `username` and `password`).
#[derive(Clone, PartialEq, Eq)]
pub struct SaslLogin {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaslLogin({}, <password>)", self.user)
    }
}

/// Reads the settings from `properties` (later entries win, so pass system properties
/// first and file entries after them, as ZKClientConfig lets the file override).
pub fn client_security<'a>(
    properties: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<ClientSecurity, String> {
    let mut p: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in properties {
        p.insert(k, v.trim());
    }
    let flag = |key: &str, default: bool| -> Result<bool, String> {
        match p.get(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(format!("{key}={v}: expected true or false")),
        }
    };
    let tls = if flag("zookeeper.client.secure", false)? { Some(tls(&p)?) } else { None };
    let sasl = if flag("zookeeper.sasl.client", true)? { sasl(&p)? } else { None };
    Ok(ClientSecurity { tls, sasl })
}

fn tls(p: &BTreeMap<&str, &str>) -> Result<ClientTlsConfig, String> {
    let mut cfg = ClientTlsConfig::new(store(p, "zookeeper.ssl.trustStore")?);
    cfg.key_store = store(p, "zookeeper.ssl.keyStore")?;
    if let Some(v) = p.get("zookeeper.ssl.protocol") {
        cfg.protocols = protocol_versions(v)
            .ok_or_else(|| format!("zookeeper.ssl.protocol={v}: rzk speaks TLSv1.2 and TLSv1.3"))?;
    }
    if let Some(v) = p.get("zookeeper.ssl.enabledProtocols") {
        cfg.protocols = enabled_versions("zookeeper.ssl.enabledProtocols", v).ok_or_else(|| {
            format!("zookeeper.ssl.enabledProtocols={v}: names neither TLSv1.2 nor TLSv1.3")
        })?;
    }
    if let Some(v) = p.get("zookeeper.ssl.ciphersuites") {
        cfg.cipher_suites = Some(name_list(v));
    }
    if let Some(v) = p.get("zookeeper.ssl.hostnameVerification") {
        cfg.hostname_verification = match v.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                return Err(format!(
                    "zookeeper.ssl.hostnameVerification={v}: expected true or false"
                ))
            }
        };
    }
    Ok(cfg)
}

/// `<prefix>.location`, `.password`/`.passwordPath`, `.type`; `None` without a location.
fn store(p: &BTreeMap<&str, &str>, prefix: &str) -> Result<Option<StoreConfig>, String> {
    let get = |suffix: &str| p.get(format!("{prefix}.{suffix}").as_str()).copied();
    let Some(location) = get("location").filter(|l| !l.is_empty()) else { return Ok(None) };
    let password = match (get("password"), get("passwordPath")) {
        (Some(pw), _) => pw.to_string(),
        (None, Some(path)) => fs::read_to_string(path)
            .map(|pw| pw.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|e| format!("{prefix}.passwordPath={path}: {e}"))?,
        (None, None) => String::new(),
    };
    let kind = match get("type").filter(|t| !t.is_empty()) {
        Some(t) => StoreKind::from_type_name(t)
            .ok_or_else(|| format!("{prefix}.type={t}: expected PEM, PKCS12 or JKS"))?,
        None => StoreKind::from_file_name(location).ok_or_else(|| {
            format!("{prefix}.location={location}: cannot tell the store type; set {prefix}.type")
        })?,
    };
    Ok(Some(StoreConfig { location: PathBuf::from(location), password, kind }))
}

/// The JAAS section's DigestLoginModule credentials; no JAAS file or no section means no
/// SASL, as the Java client then connects without it.
fn sasl(p: &BTreeMap<&str, &str>) -> Result<Option<SaslLogin>, String> {
    let Some(path) = p.get(JAAS_PROPERTY) else { return Ok(None) };
    let section = p.get("zookeeper.sasl.clientconfig").copied().unwrap_or("Client");
    let text = fs::read_to_string(path).map_err(|e| format!("{JAAS_PROPERTY}={path}: {e}"))?;
    let sections = parse_jaas(&text).map_err(|e| format!("{path}: {e}"))?;
    let Some(modules) = sections.get(section) else {
        log::info!("client: {path} has no {section} section; connecting without SASL");
        return Ok(None);
    };
    let Some((user, password)) = digest_login(modules) else {
        let classes: Vec<&str> = modules.iter().map(|m| m.class.as_str()).collect();
        return Err(format!(
            "{path}: section {section} uses {classes:?}; rzk's client speaks DIGEST-MD5 \
             (DigestLoginModule) only"
        ));
    };
    if user.is_empty() {
        return Err(format!("{path}: section {section} has no username"));
    }
    Ok(Some(SaslLogin { user, password }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_client_properties() {
        let dir = std::env::temp_dir().join(format!("rzk-client-cfg-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let jaas = dir.join("jaas.conf");
        fs::write(
            &jaas,
            "Client {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n \
             username=\"bob\"\n password=\"bobsecret\";\n};\n",
        )
        .unwrap();
        let jaas = jaas.display().to_string();
        let props = [
            ("zookeeper.client.secure", "false"),
            ("zookeeper.client.secure", "true"),
            ("zookeeper.ssl.trustStore.location", "/x/truststore.jks"),
            ("zookeeper.ssl.trustStore.password", "pw"),
            ("zookeeper.ssl.keyStore.location", "/x/key.pem"),
            ("zookeeper.ssl.hostnameVerification", "false"),
            ("zookeeper.ssl.enabledProtocols", "TLSv1.2"),
            (JAAS_PROPERTY, jaas.as_str()),
        ];
        let sec = client_security(props).unwrap();
        let tls = sec.tls.unwrap();
        assert_eq!(tls.trust_store.as_ref().map(|s| s.kind), Some(StoreKind::Jks));
        assert_eq!(tls.key_store.as_ref().map(|s| s.kind), Some(StoreKind::Pem));
        assert!(!tls.hostname_verification);
        assert_eq!(tls.protocols, vec!["TLSv1.2"]);
        let login = sec.sasl.unwrap();
        assert_eq!((login.user.as_str(), login.password.as_str()), ("bob", "bobsecret"));
        assert!(!format!("{login:?}").contains("bobsecret"));

        let off =
            client_security([(JAAS_PROPERTY, jaas.as_str()), ("zookeeper.sasl.client", "false")]);
        assert_eq!(off.unwrap(), ClientSecurity::default());
        let other = client_security([
            (JAAS_PROPERTY, jaas.as_str()),
            ("zookeeper.sasl.clientconfig", "Other"),
        ]);
        assert_eq!(other.unwrap().sasl, None);
        assert!(client_security([("zookeeper.client.secure", "yes")]).is_err());
        assert!(client_security([
            ("zookeeper.client.secure", "true"),
            ("zookeeper.ssl.trustStore.location", "/x/store.bin"),
        ])
        .is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
