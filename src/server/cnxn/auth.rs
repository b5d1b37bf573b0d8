//! Authentication on the client port, in the selector: the x509 identity a TLS handshake
//! gives, client SASL (DIGEST-MD5) exchanges, `auth` packets, and the enforced-authentication
//! gate (`enforce.auth.*`, `sessionRequireClientSASLAuth`) in front of every request.

use super::*;

impl Selector {
    /// A TLS handshake completed: the client certificate's subject becomes the connection's
    /// `x509` identity (NettyServerCnxnFactory.CertificateVerifier). False if the connection
    /// was closed for it.
    pub(super) fn tls_established(
        &mut self,
        key: usize,
        chain: &[rustls_pki_types::CertificateDer<'_>],
    ) -> bool {
        let stats = &self.shared.stats;
        stats.tls_handshakes_outstanding.fetch_sub(1, Ordering::Relaxed);
        let Some(tls) = &self.tls else { return true };
        let Some(slot) = self.slots.get_mut(key) else { return false };
        if chain.is_empty() {
            debug!("TLS connection from {} without a client certificate", slot.conn.peer());
            return true;
        }
        let added = match tls.identities(chain) {
            Some(ids) => {
                debug!("TLS client {} is {:?}", slot.conn.peer(), ids.last().map(|id| &id.id));
                slot.conn.add_identities(ids).is_ok()
            }
            None => false,
        };
        if !added {
            stats.auth_failed.fetch_add(1, Ordering::Relaxed);
            warn!(
                "Authentication failed for TLS client {}: unusable certificate subject",
                slot.conn.peer()
            );
            self.close(key);
        }
        added
    }

    /// `enforce.auth.*` / `sessionRequireClientSASLAuth` (AuthenticationHelper): a request
    /// from a connection with no identity of an enforced scheme gets
    /// SESSIONCLOSEDREQUIRESASLAUTH and the connection is closed. False if refused.
    pub(super) fn authenticated_enough(&mut self, key: usize, xid: i32) -> bool {
        let schemes = &self.shared.config.enforce_auth.schemes;
        if schemes.is_empty() {
            return true;
        }
        let Some(slot) = self.slots.get_mut(key) else { return false };
        if slot.conn.auth().ids.iter().any(|id| schemes.contains(&id.scheme)) {
            return true;
        }
        let (session, peer) = (slot.conn.session(), slot.conn.peer());
        warn!(
            "closing session 0x{session:x} from {peer}: the server requires authentication by \
             {schemes:?} and the client has none"
        );
        slot.conn.auth_answer(xid, ErrorCode::SessionClosedRequireSaslAuth);
        false
    }

    /// One client SASL token (ZooKeeperServer.processSasl with a DIGEST-MD5 server): the
    /// answer goes out at once, outside the pipeline; success adds the `sasl` identity (and
    /// `super` for `zookeeper.superUser`); failure answers AUTHFAILED and closes, unless
    /// `allowSaslFailedClients`.
    pub(super) fn sasl(&mut self, key: usize, xid: i32, body: &[u8]) {
        let shared = self.shared.clone();
        let Some(config) = shared.config.sasl.as_ref() else { return };
        let Some(slot) = self.slots.get_mut(key) else { return };
        let (session, peer) = (slot.conn.session(), slot.conn.peer());
        let token =
            crate::jute::proto::SaslToken::from_bytes(body).map(|t| t.token.unwrap_or_default());
        let step = match token {
            Ok(token) => {
                let exchange =
                    slot.sasl.get_or_insert_with(|| DigestMd5::new(crate::sasl::random_nonce()));
                exchange.step(&token, &config.users).map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("undecodable SASL request ({e})")),
        };
        shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
        match step {
            Ok(Step::Challenge(challenge)) => {
                slot.conn.sasl_answer(xid, ErrorCode::Ok, Some(challenge))
            }
            Ok(Step::Complete { token, user }) => {
                let id = crate::sasl::sasl_id(&user, config.remove_host, config.remove_realm);
                info!("Session 0x{session:x}: adding SASL authorization for authorizationID: {id}");
                let mut ids = vec![crate::jute::data::Id { scheme: "sasl".into(), id: id.clone() }];
                if config.super_user.as_deref() == Some(id.as_str()) {
                    info!("Session 0x{session:x}: authenticated id '{id}' as super user");
                    ids.push(crate::jute::data::Id { scheme: "super".into(), id: String::new() });
                }
                let err = match slot.conn.add_identities(ids) {
                    Ok(()) => ErrorCode::Ok,
                    Err(limit) => {
                        warn!("refusing SASL identity of session 0x{session:x} from {peer}: {limit:?}");
                        ErrorCode::AuthFailed
                    }
                };
                slot.conn.sasl_answer(
                    xid,
                    err,
                    if err == ErrorCode::Ok { Some(token) } else { None },
                );
            }
            Err(why) => {
                // Not counted in auth_failed_count: Apache counts failed auth packets and
                // TLS handshakes there, not SASL exchanges.
                warn!("Client {peer} (session 0x{session:x}) failed to SASL authenticate: {why}");
                let required = shared.config.enforce_auth.schemes.iter().any(|s| s == "sasl");
                if config.allow_failed && !required {
                    warn!("Maintaining client connection despite SASL authentication failure.");
                    slot.conn.sasl_answer(xid, ErrorCode::Ok, None);
                } else {
                    let err = if required {
                        ErrorCode::SessionClosedRequireSaslAuth
                    } else {
                        ErrorCode::AuthFailed
                    };
                    slot.conn.sasl_answer(xid, err, None);
                }
            }
        }
    }

    /// Answers an auth packet. The reply echoes the request's xid, as ZooKeeper's
    /// `processPacket` does: the Java client always sends -4, other clients may not.
    pub(super) fn auth(&mut self, key: usize, xid: i32, body: &[u8]) {
        let shared = self.shared.clone();
        let Some(slot) = self.slots.get_mut(key) else { return };
        let outcome = match AuthPacket::from_bytes(body) {
            Ok(p) => acl::authenticate(
                &p.scheme,
                p.auth.as_deref().unwrap_or(&[]),
                shared.config.super_digest.as_deref(),
            ),
            Err(_) => AuthOutcome::Failed,
        };
        let err = match outcome {
            AuthOutcome::Added(ids) => match slot.conn.add_identities(ids) {
                Ok(()) => ErrorCode::Ok,
                Err(limit) => {
                    let (session, peer) = (slot.conn.session(), slot.conn.peer());
                    warn!(
                        "refusing an addauth of session 0x{session:x} from {peer}: {limit:?} \
                         (at most {} identities of {} bytes); closing",
                        limits::AUTH_IDS_MAX,
                        limits::AUTH_ID_BYTES_MAX
                    );
                    ErrorCode::AuthFailed
                }
            },
            AuthOutcome::Failed => {
                shared.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
                let (session, peer) = (slot.conn.session(), slot.conn.peer());
                warn!("authentication failed for session 0x{session:x} from {peer}");
                ErrorCode::AuthFailed
            }
        };
        slot.conn.auth_answer(xid, err);
        shared.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
    }
}
