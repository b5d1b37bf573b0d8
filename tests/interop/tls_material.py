"""TLS material as kazoo's own test harness (kazoo.testing.common) makes it: a CA, a server
certificate for `localhost` and a client certificate `CN=client`, both X.509 v1 as kazoo's
harness issues them, the server's in a JKS key store and the CA in a JKS trust store
(pyOpenSSL + pyjks, password `apassword`), and the client's as PEM files for KazooClient."""

from pathlib import Path

import jks
import OpenSSL

PASSWORD = "apassword"


def _cert(subject_cn, serial, issuer, key, sign_key, ca=False):
    cert = OpenSSL.crypto.X509()
    if ca:
        cert.set_version(2)
    cert.set_serial_number(serial)
    cert.get_subject().CN = subject_cn
    cert.gmtime_adj_notBefore(0)
    cert.gmtime_adj_notAfter(24 * 60 * 60)
    cert.set_issuer(issuer.get_subject() if issuer is not None else cert.get_subject())
    cert.set_pubkey(key)
    if ca:
        cert.add_extensions(
            [
                OpenSSL.crypto.X509Extension(b"basicConstraints", True, b"CA:TRUE, pathlen:0"),
                OpenSSL.crypto.X509Extension(b"keyUsage", True, b"keyCertSign, cRLSign"),
                OpenSSL.crypto.X509Extension(b"subjectKeyIdentifier", False, b"hash", subject=cert),
            ]
        )
    cert.sign(sign_key, "sha256")
    return cert


def _key():
    key = OpenSSL.crypto.PKey()
    key.generate_key(OpenSSL.crypto.TYPE_RSA, 2048)
    return key


def generate(work_dir):
    """Writes keystore.jks, truststore.jks, client key/cert and CA PEMs, the server's PEM key
    store, and the client's JKS key store (for Java clients); returns their paths."""
    work = Path(work_dir)
    ca_key = _key()
    ca = _cert("ca.kazoo.org", 1, None, ca_key, ca_key, ca=True)
    server_key = _key()
    server = _cert("localhost", 2, ca, server_key, ca_key)
    client_key = _key()
    client = _cert("client", 3, ca, client_key, ca_key)
    asn1 = OpenSSL.crypto.FILETYPE_ASN1
    pem = OpenSSL.crypto.FILETYPE_PEM
    trust = jks.KeyStore.new("jks", [jks.TrustedCertEntry.new("kazoo ca", OpenSSL.crypto.dump_certificate(asn1, ca))])
    entry = jks.PrivateKeyEntry.new(
        "server cert",
        [OpenSSL.crypto.dump_certificate(asn1, server)],
        OpenSSL.crypto.dump_privatekey(asn1, server_key),
        "rsa_raw",
    )
    keys = jks.KeyStore.new("jks", [entry])
    client_entry = jks.PrivateKeyEntry.new(
        "client cert",
        [OpenSSL.crypto.dump_certificate(asn1, client)],
        OpenSSL.crypto.dump_privatekey(asn1, client_key),
        "rsa_raw",
    )
    client_keys = jks.KeyStore.new("jks", [client_entry])
    paths = {
        "keystore": work / "keystore.jks",
        "truststore": work / "truststore.jks",
        "client_key": work / "client-key.pem",
        "client_cert": work / "client-cert.pem",
        "ca_cert": work / "ca-cert.pem",
        "client_keystore": work / "client-keystore.jks",
        # The server's key and certificate in one PEM file, for ssl.keyStore.type=PEM.
        "keystore_pem": work / "keystore.pem",
    }
    client_keys.save(str(paths["client_keystore"]), PASSWORD)
    keys.save(str(paths["keystore"]), PASSWORD)
    trust.save(str(paths["truststore"]), PASSWORD)
    paths["client_key"].write_bytes(OpenSSL.crypto.dump_privatekey(pem, client_key))
    paths["client_cert"].write_bytes(OpenSSL.crypto.dump_certificate(pem, client))
    paths["ca_cert"].write_bytes(OpenSSL.crypto.dump_certificate(pem, ca))
    paths["keystore_pem"].write_bytes(
        OpenSSL.crypto.dump_privatekey(pem, server_key) + OpenSSL.crypto.dump_certificate(pem, server)
    )
    return paths
