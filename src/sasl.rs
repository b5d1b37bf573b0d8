//! SASL for clients (Apache's `ZooKeeperSaslServer` with Java's DIGEST-MD5 server, RFC 2831):
//! the JAAS file's `Server` section (`DigestLoginModule`, `user_NAME="password"`), the
//! DIGEST-MD5 exchange as a pure state machine ([`DigestMd5`]: tokens in, tokens out), and
//! the `sasl` identity an authenticated client gets (Kerberos-style host and realm removal
//! as `kerberos.removeHostFromPrincipal`/`removeRealmFromPrincipal` ask).
//!
//! The same exchanges serve quorum SASL ([`QUORUM_SERVICE`], driven by `quorum::auth`).
//!
//! I/O: none here but [`random_nonce`] (the OS's random source); the JAAS file is read by the
//! configuration, and the exchanges take their nonces from the caller.

use std::collections::BTreeMap;
use std::fmt;

use md5::{Digest, Md5};

/// The server name Apache gives its DIGEST-MD5 server (and clients put in `digest-uri`).
pub const DIGEST_SERVER_NAME: &str = "zk-sasl-md5";
/// The SASL service name (`zookeeper.sasl.client.username` on the client side).
pub const SERVICE: &str = "zookeeper";

/// Who a DIGEST-MD5 exchange is with: the protocol and server name that make its
/// `digest-uri` (`protocol/server`) and the server's realm (Java's DIGEST-MD5 server offers
/// its server name as the realm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestService {
    /// The SASL protocol (service) name.
    pub protocol: &'static str,
    /// The server name.
    pub server: &'static str,
}

/// Client connections (ZooKeeperSaslServer, ZooKeeperSaslClient).
pub const CLIENT_SERVICE: DigestService =
    DigestService { protocol: SERVICE, server: DIGEST_SERVER_NAME };
/// Quorum connections (QuorumAuth's `zookeeper-quorum` and `zk-quorum-sasl-md5`).
pub const QUORUM_SERVICE: DigestService =
    DigestService { protocol: "zookeeper-quorum", server: "zk-quorum-sasl-md5" };

impl DigestService {
    fn uri(&self) -> String {
        format!("{}/{}", self.protocol, self.server)
    }
}
/// Apache's `DigestLoginModule`.
pub const DIGEST_LOGIN_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// One login module line of a JAAS section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginModule {
    /// Its class name.
    pub class: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// `key=value` options, in file order (a later duplicate wins).
    pub options: BTreeMap<String, String>,
}

/// Parses a JAAS login configuration (Java's `ConfigFile` syntax): `Name { Class Flag
/// key=value ...; ... };`, values quoted or bare, `//` and `/* */` comments.
pub fn parse_jaas(text: &str) -> Result<BTreeMap<String, Vec<LoginModule>>, String> {
    let tokens = tokenize(text)?;
    let mut sections = BTreeMap::new();
    let mut i = 0;
    let next = |i: &mut usize| -> Option<&Token> {
        let t = tokens.get(*i);
        *i += 1;
        t
    };
    while i < tokens.len() {
        let Some(Token::Word(name)) = next(&mut i) else {
            return Err("expected a section name".into());
        };
        if next(&mut i) != Some(&Token::Punct('{')) {
            return Err(format!("section {name}: expected '{{'"));
        }
        let mut modules = Vec::new();
        loop {
            match next(&mut i) {
                Some(Token::Punct('}')) => break,
                Some(Token::Word(class)) => {
                    let Some(Token::Word(flag)) = next(&mut i) else {
                        return Err(format!("section {name}: {class} has no control flag"));
                    };
                    let flag = flag.to_ascii_lowercase();
                    if !matches!(
                        flag.as_str(),
                        "required" | "requisite" | "sufficient" | "optional"
                    ) {
                        return Err(format!("section {name}: {class}: bad control flag {flag}"));
                    }
                    let mut options = BTreeMap::new();
                    loop {
                        match next(&mut i) {
                            Some(Token::Punct(';')) => break,
                            Some(Token::Word(key)) => {
                                if next(&mut i) != Some(&Token::Punct('=')) {
                                    return Err(format!(
                                        "section {name}: option {key}: expected '='"
                                    ));
                                }
                                let value = match next(&mut i) {
                                    Some(Token::Word(v)) | Some(Token::Quoted(v)) => v.clone(),
                                    _ => {
                                        return Err(format!(
                                            "section {name}: option {key}: no value"
                                        ))
                                    }
                                };
                                options.insert(key.clone(), value);
                            }
                            _ => {
                                return Err(format!(
                                    "section {name}: {class}: expected an option or ';'"
                                ))
                            }
                        }
                    }
                    modules.push(LoginModule { class: class.clone(), flag, options });
                }
                _ => return Err(format!("section {name}: expected a login module or '}}'")),
            }
        }
        if tokens.get(i) == Some(&Token::Punct(';')) {
            i += 1;
        }
        sections.insert(name.clone(), modules);
    }
    Ok(sections)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            if i >= chars.len() {
                return Err("unterminated comment".into());
            }
            i += 2;
        } else if matches!(c, '{' | '}' | ';' | '=') {
            tokens.push(Token::Punct(c));
            i += 1;
        } else if c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err("unterminated quoted value".into()),
                    Some('"') => break,
                    Some('\\') if i + 1 < chars.len() => {
                        value.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    Some(&ch) => value.push(ch),
                }
                i += 1;
            }
            i += 1;
            tokens.push(Token::Quoted(value));
        } else {
            let start = i;
            while i < chars.len()
                && !chars[i].is_whitespace()
                && !matches!(chars[i], '{' | '}' | ';' | '=' | '"')
            {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(tokens)
}

/// The `username` and `password` of a section's `DigestLoginModule` (a client's or a quorum
/// learner's login); `None` if the section has no such module.
pub fn digest_login(modules: &[LoginModule]) -> Option<(String, String)> {
    let module = modules.iter().find(|m| m.class == DIGEST_LOGIN_MODULE)?;
    let get = |k: &str| module.options.get(k).cloned().unwrap_or_default();
    Some((get("username"), get("password")))
}

/// The users a `Server` section's `DigestLoginModule` defines (`user_NAME="password"`);
/// `None` if the section has no such module.
pub fn digest_users(modules: &[LoginModule]) -> Option<BTreeMap<String, String>> {
    let module = modules.iter().find(|m| m.class == DIGEST_LOGIN_MODULE)?;
    let users = module
        .options
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("user_").map(|name| (name.to_string(), v.clone())))
        .collect();
    Some(users)
}

/// Why an exchange failed (logged; the client gets AUTHFAILED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslError(pub String);

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DIGEST-MD5: {}", self.0)
    }
}

fn fail<T>(why: impl Into<String>) -> Result<T, SaslError> {
    Err(SaslError(why.into()))
}

/// What one step of the exchange produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge; the exchange goes on.
    Challenge(Vec<u8>),
    /// The exchange succeeded.
    Complete {
        /// The last token to send (`rspauth=...`).
        token: Vec<u8>,
        /// The authenticated user name.
        user: String,
    },
}

/// A DIGEST-MD5 server exchange (RFC 2831, `qop=auth`, `algorithm=md5-sess`), as Java's
/// `DigestMD5Server` runs it for ZooKeeper: the client's first (empty) token gets the
/// challenge, its digest-response is checked against the user's password, and a good one
/// gets `rspauth`.
#[derive(Debug)]
pub struct DigestMd5 {
    service: DigestService,
    nonce: String,
    state: State,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Start,
    Challenged,
    Done,
}

impl DigestMd5 {
    /// A new exchange with a client connection, with this server nonce (random, printable,
    /// no quotes).
    pub fn new(nonce: String) -> DigestMd5 {
        DigestMd5::for_service(CLIENT_SERVICE, nonce)
    }

    /// A new exchange for `service` (a client or a quorum learner).
    pub fn for_service(service: DigestService, nonce: String) -> DigestMd5 {
        DigestMd5 { service, nonce, state: State::Start }
    }

    /// Whether the client is authenticated.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Evaluates a client token; `users` maps names to passwords.
    pub fn step(
        &mut self,
        token: &[u8],
        users: &BTreeMap<String, String>,
    ) -> Result<Step, SaslError> {
        match self.state {
            State::Start if token.is_empty() => {
                self.state = State::Challenged;
                let challenge = format!(
                    "realm=\"{}\",nonce=\"{}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                    self.service.server, self.nonce
                );
                Ok(Step::Challenge(challenge.into_bytes()))
            }
            State::Start => fail("an initial response is not expected"),
            State::Challenged => {
                let step = self.check(token, users);
                // One try: a failed response ends the exchange.
                self.state = State::Done;
                if step.is_err() {
                    self.state = State::Challenged;
                    self.nonce.clear();
                }
                step
            }
            State::Done => fail("the exchange is already complete"),
        }
    }

    fn check(&self, token: &[u8], users: &BTreeMap<String, String>) -> Result<Step, SaslError> {
        if self.nonce.is_empty() {
            return fail("the exchange failed before");
        }
        let text =
            std::str::from_utf8(token).map_err(|_| SaslError("response is not UTF-8".into()))?;
        let fields = parse_directives(text)?;
        let get = |k: &str| fields.get(k).map(String::as_str);
        let Some(user) = get("username") else { return fail("no username") };
        let realm = get("realm").unwrap_or("");
        if !realm.is_empty() && realm != self.service.server {
            return fail(format!("realm {realm} is not {}", self.service.server));
        }
        if get("nonce") != Some(self.nonce.as_str()) {
            return fail("nonce mismatch");
        }
        let Some(cnonce) = get("cnonce") else { return fail("no cnonce") };
        let nc = get("nc").unwrap_or("");
        if nc != "00000001" {
            return fail(format!("nonce count {nc} is not 00000001"));
        }
        let qop = get("qop").unwrap_or("auth");
        if qop != "auth" {
            return fail(format!("qop {qop} is not offered"));
        }
        let uri = get("digest-uri").unwrap_or("");
        let want = self.service.uri();
        if !uri.eq_ignore_ascii_case(&want) {
            return fail(format!("digest-uri {uri} is not {want}"));
        }
        let Some(response) = get("response") else { return fail("no response") };
        let Some(password) = users.get(user) else {
            return fail(format!("unknown user {user}"));
        };
        let authzid = get("authzid");
        let ha1 = hex_md5(&a1(user, realm, password, &self.nonce, cnonce, authzid));
        let expected =
            response_digest(&ha1, &self.nonce, nc, cnonce, qop, &format!("AUTHENTICATE:{uri}"));
        if !expected.eq_ignore_ascii_case(response) {
            return fail(format!("wrong password for {user}"));
        }
        let rspauth = response_digest(&ha1, &self.nonce, nc, cnonce, qop, &format!(":{uri}"));
        Ok(Step::Complete {
            token: format!("rspauth={rspauth}").into_bytes(),
            user: user.to_string(),
        })
    }
}

/// A DIGEST-MD5 client exchange (RFC 2831, `qop=auth`), as Java's `DigestMD5Client` runs it
/// for a ZooKeeper client or a quorum learner: an empty first token, the digest-response to
/// the server's challenge, then the server's `rspauth` checked.
#[derive(Debug)]
pub struct DigestMd5Client {
    service: DigestService,
    user: String,
    password: String,
    cnonce: String,
    /// The `rspauth` value the server must send, once the response is out.
    expected: Option<String>,
    complete: bool,
}

impl DigestMd5Client {
    /// A new exchange with a ZooKeeper server for `user`, with this client nonce (random,
    /// printable, no quotes).
    pub fn new(user: &str, password: &str, cnonce: String) -> DigestMd5Client {
        DigestMd5Client::for_service(CLIENT_SERVICE, user, password, cnonce)
    }

    /// A new exchange with `service` (a ZooKeeper server or a quorum peer).
    pub fn for_service(
        service: DigestService,
        user: &str,
        password: &str,
        cnonce: String,
    ) -> DigestMd5Client {
        DigestMd5Client {
            service,
            user: user.to_string(),
            password: password.to_string(),
            cnonce,
            expected: None,
            complete: false,
        }
    }

    /// The first token (DIGEST-MD5 has no initial response: empty).
    pub fn initial(&self) -> Vec<u8> {
        Vec::new()
    }

    /// Whether the server proved it knows the password too.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Evaluates a server token: the challenge gets the response (`Some`), the `rspauth`
    /// completes the exchange (`None`).
    pub fn step(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        if self.complete {
            return fail("the exchange is already complete");
        }
        let text =
            std::str::from_utf8(token).map_err(|_| SaslError("token is not UTF-8".into()))?;
        let fields = parse_directives(text)?;
        let get = |k: &str| fields.get(k).map(String::as_str);
        if let Some(expected) = &self.expected {
            return match get("rspauth") {
                Some(got) if got.eq_ignore_ascii_case(expected) => {
                    self.complete = true;
                    Ok(None)
                }
                Some(_) => fail("the server's rspauth is wrong"),
                None => fail("no rspauth from the server"),
            };
        }
        let Some(nonce) = get("nonce") else { return fail("the challenge has no nonce") };
        if nonce.is_empty() {
            return fail("the challenge has an empty nonce");
        }
        let qops = get("qop").unwrap_or("auth");
        if !qops.split(',').any(|q| q.trim() == "auth") {
            return fail(format!("the server offers qop {qops}, not auth"));
        }
        if let Some(alg) = get("algorithm") {
            if !alg.eq_ignore_ascii_case("md5-sess") {
                return fail(format!("algorithm {alg} is not md5-sess"));
            }
        }
        let realm = get("realm").unwrap_or("");
        let uri = self.service.uri();
        let nc = "00000001";
        let ha1 = hex_md5(&a1(&self.user, realm, &self.password, nonce, &self.cnonce, None));
        let response =
            response_digest(&ha1, nonce, nc, &self.cnonce, "auth", &format!("AUTHENTICATE:{uri}"));
        self.expected =
            Some(response_digest(&ha1, nonce, nc, &self.cnonce, "auth", &format!(":{uri}")));
        let charset = if get("charset").is_some() { "charset=utf-8," } else { "" };
        let token = format!(
            "{charset}username={},realm={},nonce={},nc={nc},cnonce={},digest-uri={},\
             maxbuf=65536,response={response},qop=auth",
            quote(&self.user),
            quote(realm),
            quote(nonce),
            quote(&self.cnonce),
            quote(&uri),
        );
        Ok(Some(token.into_bytes()))
    }
}

/// A quoted-string of RFC 2831: `"` and `\` escaped with a backslash.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A DIGEST-MD5 server nonce: 30 bytes from the OS's random source, base64 (as Java's
/// DigestMD5Server makes it). Falls back to a time-and-counter mix only if the OS has none.
pub fn random_nonce() -> String {
    use base64::Engine;
    let mut raw = [0u8; 30];
    if getrandom::fill(&mut raw).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        raw[..16].copy_from_slice(&t.to_le_bytes());
        raw[16..24].copy_from_slice(&fastrand::u64(..).to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// A client nonce: `len` random letters and digits from `next`, a source of random words.
pub fn nonce(len: usize, mut next: impl FnMut() -> u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char).collect()
}

/// A1 of `md5-sess`: MD5(user:realm:password) as bytes, then `:nonce:cnonce[:authzid]`.
fn a1(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    authzid: Option<&str>,
) -> Vec<u8> {
    let mut a1 = Md5::digest(format!("{user}:{realm}:{password}").as_bytes()).to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    if let Some(z) = authzid {
        a1.extend_from_slice(format!(":{z}").as_bytes());
    }
    a1
}

fn response_digest(ha1: &str, nonce: &str, nc: &str, cnonce: &str, qop: &str, a2: &str) -> String {
    let ha2 = hex_md5(a2.as_bytes());
    hex_md5(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes())
}

fn hex_md5(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `key=value` and `key="quoted \"value\""` directives separated by commas.
fn parse_directives(text: &str) -> Result<BTreeMap<String, String>, SaslError> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { return fail("malformed directive") };
        let key = rest[..eq].trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    _ => v.push(c),
                }
            }
            let Some(end) = end else { return fail("unterminated quoted value") };
            value = v;
            rest = quoted[end..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        if out.insert(key.clone(), value).is_some() && key != "realm" {
            return fail(format!("directive {key} repeated"));
        }
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.is_empty() {
            return fail("directives must be separated by commas");
        }
    }
    Ok(out)
}

/// The `sasl` identity of an authenticated user (SaslServerCallbackHandler with Kerberos
/// name rules): `name[/host][@realm]`, host and realm dropped when asked.
pub fn sasl_id(user: &str, remove_host: bool, remove_realm: bool) -> String {
    let (rest, realm) = match user.split_once('@') {
        Some((r, realm)) => (r, Some(realm)),
        None => (user, None),
    };
    let (name, host) = match rest.split_once('/') {
        Some((n, h)) => (n, Some(h)),
        None => (rest, None),
    };
    let mut id = name.to_string();
    if let (Some(h), false) = (host, remove_host) {
        id.push('/');
        id.push_str(h);
    }
    if let (Some(r), false) = (realm, remove_realm) {
        id.push('@');
        id.push_str(r);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        [("jaasuser".to_string(), "jaas_password".to_string())].into_iter().collect()
    }

    /// The client side of RFC 2831, as a test oracle.
    fn client_response(challenge: &str, user: &str, password: &str, cnonce: &str) -> String {
        let fields = parse_directives(challenge).unwrap();
        let nonce = &fields["nonce"];
        let uri = "zookeeper/zk-sasl-md5";
        let ha1 = hex_md5(&a1(user, DIGEST_SERVER_NAME, password, nonce, cnonce, None));
        let resp = response_digest(
            &ha1,
            nonce,
            "00000001",
            cnonce,
            "auth",
            &format!("AUTHENTICATE:{uri}"),
        );
        format!(
            "charset=utf-8,username=\"{user}\",realm=\"zk-sasl-md5\",nonce=\"{nonce}\",nc=00000001,\
             cnonce=\"{cnonce}\",digest-uri=\"{uri}\",maxbuf=65536,response={resp},qop=auth"
        )
    }

    #[test]
    fn rfc2831_example_digest() {
        // RFC 2831 section 4's IMAP example (md5-sess, qop=auth).
        let ha1 = hex_md5(&a1(
            "chris",
            "elwood.innosoft.com",
            "secret",
            "OA6MG9tEQGm2hh",
            "OA6MHXh6VqTrRk",
            None,
        ));
        let resp = response_digest(
            &ha1,
            "OA6MG9tEQGm2hh",
            "00000001",
            "OA6MHXh6VqTrRk",
            "auth",
            "AUTHENTICATE:imap/elwood.innosoft.com",
        );
        assert_eq!(resp, "d388dad90d4bbd760a152321f2143af7");
        let rsp = response_digest(
            &ha1,
            "OA6MG9tEQGm2hh",
            "00000001",
            "OA6MHXh6VqTrRk",
            "auth",
            ":imap/elwood.innosoft.com",
        );
        assert_eq!(rsp, "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn exchange_succeeds_once_and_fails_on_a_wrong_password() {
        let mut s = DigestMd5::new("abcdef0123".into());
        let Step::Challenge(c) = s.step(b"", &users()).unwrap() else { panic!() };
        let c = String::from_utf8(c).unwrap();
        assert!(c.contains("nonce=\"abcdef0123\"") && c.contains("algorithm=md5-sess"), "{c}");
        let good = client_response(&c, "jaasuser", "jaas_password", "xyz");
        match s.step(good.as_bytes(), &users()).unwrap() {
            Step::Complete { token, user } => {
                assert_eq!(user, "jaasuser");
                assert!(token.starts_with(b"rspauth="));
            }
            other => panic!("{other:?}"),
        }
        assert!(s.is_complete());
        let mut s = DigestMd5::new("n2".into());
        let Step::Challenge(c) = s.step(b"", &users()).unwrap() else { panic!() };
        let bad = client_response(&String::from_utf8(c).unwrap(), "jaasuser", "nope", "xyz");
        assert!(s.step(bad.as_bytes(), &users()).is_err());
        assert!(!s.is_complete());
        let unknown = client_response("nonce=\"n3\"", "baduser", "badpassword", "c");
        let mut s = DigestMd5::new("n3".into());
        s.step(b"", &users()).unwrap();
        assert!(s.step(unknown.as_bytes(), &users()).is_err());
        // Garbage never panics.
        let mut s = DigestMd5::new("n4".into());
        s.step(b"", &users()).unwrap();
        for junk in [&b"=,=\""[..], b"username", b"\xff\xfe", b"a=\"unterminated"] {
            let mut s = DigestMd5::new("n4".into());
            s.state = State::Challenged;
            assert!(s.step(junk, &users()).is_err());
        }
    }

    #[test]
    fn quorum_exchanges_name_the_quorum_service() {
        let exchange = |server_service, client_service| {
            let mut server = DigestMd5::for_service(server_service, "sn".into());
            let mut client = DigestMd5Client::for_service(
                client_service,
                "jaasuser",
                "jaas_password",
                "cn".into(),
            );
            let Step::Challenge(challenge) = server.step(&client.initial(), &users()).unwrap()
            else {
                panic!("no challenge")
            };
            let response = client.step(&challenge).unwrap().unwrap();
            let outcome = server.step(&response, &users());
            (String::from_utf8(challenge).unwrap(), String::from_utf8(response).unwrap(), outcome)
        };
        let (challenge, response, outcome) = exchange(QUORUM_SERVICE, QUORUM_SERVICE);
        assert!(challenge.contains("realm=\"zk-quorum-sasl-md5\""), "{challenge}");
        assert!(response.contains("digest-uri=\"zookeeper-quorum/zk-quorum-sasl-md5\""));
        assert!(matches!(outcome, Ok(Step::Complete { .. })));
        // A client-port exchange is not a quorum one.
        let (_, _, outcome) = exchange(QUORUM_SERVICE, CLIENT_SERVICE);
        assert!(outcome.is_err());
    }

    #[test]
    fn jaas_sections_and_digest_users() {
        let text = r#"
            // kazoo's harness
            Server {
                org.apache.zookeeper.server.auth.DigestLoginModule required
                user_super="super_secret"
                user_jaasuser="jaas_password";
            };
            /* a client section */
            Client { org.apache.zookeeper.server.auth.DigestLoginModule required username=bob password="p\"w"; };
        "#;
        let sections = parse_jaas(text).unwrap();
        let users = digest_users(&sections["Server"]).unwrap();
        assert_eq!(users.get("jaasuser").map(String::as_str), Some("jaas_password"));
        assert_eq!(users.get("super").map(String::as_str), Some("super_secret"));
        assert_eq!(sections["Client"][0].options["password"], "p\"w");
        assert!(parse_jaas("Server { x required a=; };").is_err());
        assert!(parse_jaas("Server { x sometimes; };").is_err());
        assert!(parse_jaas("Server {").is_err());
    }

    #[test]
    fn kerberos_name_rules() {
        assert_eq!(sasl_id("jaasuser", false, false), "jaasuser");
        assert_eq!(sasl_id("zk/host1@REALM", false, false), "zk/host1@REALM");
        assert_eq!(sasl_id("zk/host1@REALM", true, false), "zk@REALM");
        assert_eq!(sasl_id("zk/host1@REALM", true, true), "zk");
    }

    #[test]
    fn client_and_server_exchanges_agree() {
        let mut server = DigestMd5::new("servernonce".into());
        let mut client = DigestMd5Client::new("jaasuser", "jaas_password", "cnonce1".into());
        let Step::Challenge(challenge) = server.step(&client.initial(), &users()).unwrap() else {
            panic!("no challenge")
        };
        let response = client.step(&challenge).unwrap().unwrap();
        let Step::Complete { token, user } = server.step(&response, &users()).unwrap() else {
            panic!("not complete")
        };
        assert_eq!(user, "jaasuser");
        assert!(!client.is_complete());
        assert_eq!(client.step(&token).unwrap(), None);
        assert!(client.is_complete());

        // A wrong password is refused by the server; a forged rspauth by the client.
        let mut server = DigestMd5::new("n2".into());
        let mut client = DigestMd5Client::new("jaasuser", "wrong", "c2".into());
        let Step::Challenge(challenge) = server.step(&[], &users()).unwrap() else { panic!() };
        let response = client.step(&challenge).unwrap().unwrap();
        assert!(server.step(&response, &users()).is_err());
        assert!(client.step(b"rspauth=00000000000000000000000000000000").is_err());
        assert!(!client.is_complete());
    }

    #[test]
    fn client_quotes_and_refuses_odd_challenges() {
        let mut client = DigestMd5Client::new("a\"b", "p", "c".into());
        let token = client.step(b"realm=\"r\",nonce=\"n\",qop=\"auth\"").unwrap().unwrap();
        let fields = parse_directives(std::str::from_utf8(&token).unwrap()).unwrap();
        assert_eq!(fields["username"], "a\"b");
        assert_eq!(fields["realm"], "r");
        let mut client = DigestMd5Client::new("u", "p", "c".into());
        assert!(client.step(b"nonce=\"n\",qop=\"auth-conf\"").is_err());
        assert!(client.step(b"qop=\"auth\"").is_err());
        assert!(client.step(&[0xff]).is_err());
        assert_eq!(nonce(8, || 0).len(), 8);
    }
}
