//! A throw-away certificate authority for TLS tests (rcgen): a CA and the certificates it
//! issues, as DER and PEM.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, SanType,
};
use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use super::ensemble::set_key;

/// A CA.
pub struct Pki {
    /// The CA's certificate.
    pub ca: rcgen::Certificate,
    ca_key: KeyPair,
}

/// A certificate the CA issued, with its key.
pub struct Issued {
    pub cert: CertificateDer<'static>,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    /// A CA whose subject is `CN=cn`.
    pub fn new(cn: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    /// A certificate for `localhost` and 127.0.0.1, subject `O=org, CN=cn` (DER order).
    pub fn issue(&self, cn: &str, org: Option<&str>) -> Issued {
        self.issue_named(cn, org, &["localhost"], true)
    }

    /// A certificate naming only the DNS names `names`.
    pub fn issue_for(&self, cn: &str, names: &[&str]) -> Issued {
        self.issue_named(cn, None, names, false)
    }

    /// Like [`Pki::issue`], but valid only in the past (2019) or only in the future (2090).
    pub fn issue_outside_validity(&self, cn: &str, expired: bool) -> Issued {
        let (from, to) = if expired { (2019, 2020) } else { (2090, 2091) };
        self.issue_with(cn, None, &["localhost"], true, |p| {
            p.not_before = rcgen::date_time_ymd(from, 1, 1);
            p.not_after = rcgen::date_time_ymd(to, 1, 1);
        })
    }

    fn issue_named(&self, cn: &str, org: Option<&str>, names: &[&str], ip: bool) -> Issued {
        self.issue_with(cn, org, names, ip, |_| {})
    }

    fn issue_with(
        &self,
        cn: &str,
        org: Option<&str>,
        names: &[&str],
        ip: bool,
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        tweak(&mut params);
        if ip {
            params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        }
        params.distinguished_name = DistinguishedName::new();
        if let Some(org) = org {
            params.distinguished_name.push(DnType::OrganizationName, org);
        }
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        Issued {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The CA's certificate.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }
}

/// Writes `keystore.pem` (key + certificate) and `truststore.pem` (`pki`'s CA) into `dir`.
pub fn write_stores(pki: &Pki, dir: &Path, issued: &Issued) {
    std::fs::create_dir_all(dir).unwrap();
    let key_store = format!("{}{}", issued.key_pem, issued.cert_pem);
    std::fs::write(dir.join("keystore.pem"), key_store).unwrap();
    std::fs::write(dir.join("truststore.pem"), pki.ca.pem()).unwrap();
}

/// zoo.cfg lines for quorum TLS with the stores in `dir`.
pub fn quorum_tls(cfg: &mut String, dir: &Path) {
    set_key(cfg, "sslQuorum", "true");
    set_key(cfg, "ssl.quorum.keyStore.location", &dir.join("keystore.pem").display().to_string());
    set_key(cfg, "ssl.quorum.keyStore.type", "PEM");
    set_key(
        cfg,
        "ssl.quorum.trustStore.location",
        &dir.join("truststore.pem").display().to_string(),
    );
    set_key(cfg, "ssl.quorum.trustStore.type", "PEM");
    set_key(cfg, "tickTime", "300");
    set_key(cfg, "initLimit", "30");
    set_key(cfg, "syncLimit", "10");
}
