//! TLS on either leg (SPEC 10), as the driver uses it: the rustls
//! configurations, built before the jail from the files the configuration
//! names, and [`Channel`], a socket with or without TLS on it.
//!
//! No TLS of our own: rustls does the protocol, ring the cryptography. The
//! engine (`session/`) decides when a leg turns to TLS; this module only
//! carries it out. Handshakes are blocking and bounded by a deadline.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ServerSessionMemoryCache;
use rustls::{
    ClientConfig, ClientConnection, Connection, DigitallySignedStruct, HandshakeKind,
    RootCertStore, ServerConfig, ServerConnection, SignatureScheme,
};

use crate::config::{ClientTls, Config, ServerTls};
use crate::sys::net;

/// What a session needs for TLS, read before the jail.
#[derive(Default)]
pub struct Tls {
    /// Towards clients (the proxy is the TLS server); ClientTLS not off.
    client_leg: Option<Arc<ServerConfig>>,
    /// The same, sending no TLS 1.3 session tickets: for the client's
    /// upload data connections (see [`Tls::accept`]).
    client_leg_quiet: Option<Arc<ServerConfig>>,
    /// Towards servers, checking their certificates (ServerTLSVerify yes).
    verified: Option<Arc<ClientConfig>>,
    /// Towards servers, accepting any certificate (ServerTLSVerify no).
    unverified: Option<Arc<ClientConfig>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a PEM certificate chain.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// Read a PEM private key.
fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Check that a file the configuration names holds what it must: `what`
/// is the option's name. For `Config::load`, so a broken file is a
/// configuration error with its line.
pub fn check_file(what: &str, path: &Path) -> Result<(), String> {
    match what {
        "TLSKeyFile" => key(path).map(|_| ()),
        _ => certificates(path).map(|_| ()),
    }
}

/// Check that the key in `key_file` belongs to the first certificate in
/// `cert_file` (both readable: see [`check_file`]).
pub fn check_pair(cert_file: &Path, key_file: &Path) -> Result<(), String> {
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certificates(cert_file)?, key(key_file)?)
        .map(|_| ())
        .map_err(|e| {
            format!(
                "{} is not the key of the certificate in {} ({e})",
                key_file.display(),
                cert_file.display()
            )
        })
}

impl Tls {
    /// Build what the configuration asks for; an error names the file.
    pub fn load(cfg: &Config) -> Result<Tls, String> {
        let mut tls = Tls::default();
        if cfg.client_tls != ClientTls::Off {
            let (Some(cert), Some(key_file)) = (&cfg.tls_certificate_file, &cfg.tls_key_file)
            else {
                return Err("ClientTLS needs TLSCertificateFile and TLSKeyFile".into());
            };
            let mut server = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_single_cert(certificates(cert)?, key(key_file)?)
                .map_err(|e| format!("{}: {e}", key_file.display()))?;
            // Session reuse on data connections (SPEC 10): stateless
            // tickets, because rustls's stateful store hands out each TLS
            // 1.3 ticket once, while lftp and Python present the control
            // session's ticket on every data connection. A ticket key of
            // this process only: a ticket resumes nothing but this session
            // (each session is its own process). TLS 1.2 session ids use
            // the memory cache, whose look-ups do not remove. rustls sends
            // new tickets after every handshake, resumed ones too, so
            // clients that take the newest ticket each time (curl) find one.
            server.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| e.to_string())?;
            server.session_storage = ServerSessionMemoryCache::new(64);
            let mut quiet = server.clone();
            quiet.send_tls13_tickets = 0;
            tls.client_leg = Some(Arc::new(server));
            tls.client_leg_quiet = Some(Arc::new(quiet));
        }
        let contexts = std::iter::once(&cfg.global).chain(cfg.users.iter().map(|u| &u.settings));
        let (mut verify, mut trust_any) = (false, false);
        for s in contexts {
            if s.server_tls != ServerTls::Off {
                verify |= s.server_tls_verify;
                trust_any |= !s.server_tls_verify;
            }
        }
        // An LDAP entry may turn ServerTLS on too: be ready with the
        // checking configuration whenever the directory is used.
        verify |= cfg.ldap.is_some() && cfg.server_tls_ca_file.exists();
        if verify {
            let mut roots = RootCertStore::empty();
            let (added, _) =
                roots.add_parsable_certificates(certificates(&cfg.server_tls_ca_file)?);
            if added == 0 {
                return Err(format!(
                    "{}: no usable CA certificate",
                    cfg.server_tls_ca_file.display()
                ));
            }
            let client = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            tls.verified = Some(Arc::new(client));
        }
        if trust_any {
            let provider = provider();
            let client = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            tls.unverified = Some(Arc::new(client));
        }
        Ok(tls)
    }

    /// A new TLS server connection towards the client. `tickets`: send
    /// TLS 1.3 session tickets after the handshake (control connections,
    /// downloads). Not on an upload's data connection: its client never
    /// reads it, so tickets would lie unread when it closes, which makes
    /// its kernel reset the connection and throw away the end of the
    /// upload still on its way to us.
    pub fn accept(&self, tickets: bool) -> io::Result<Connection> {
        let cfg = if tickets {
            &self.client_leg
        } else {
            &self.client_leg_quiet
        }
        .clone()
        .ok_or_else(|| io::Error::other("TLS towards clients is not configured"))?;
        ServerConnection::new(cfg)
            .map(Connection::Server)
            .map_err(io::Error::other)
    }

    /// A new TLS client connection towards the server `name`. Data
    /// connections use the same name as the control connection, so that
    /// rustls finds the control session's tickets and resumes it.
    pub fn connect(&self, name: &str, verify: bool) -> io::Result<Connection> {
        let cfg = if verify {
            self.verified.clone()
        } else {
            self.unverified.clone()
        }
        .ok_or_else(|| io::Error::other("TLS towards the server is not configured"))?;
        let name = ServerName::try_from(name.to_string())
            .map_err(|_| io::Error::other(format!("'{name}' is not a server name")))?;
        ClientConnection::new(cfg, name)
            .map(Connection::Client)
            .map_err(io::Error::other)
    }
}

/// Why a transfer's data connections could not be secured.
pub struct DataTlsError {
    /// The client's side failed (else the server's).
    pub client: bool,
    pub why: String,
    /// The client's handshake worked but made a new session where
    /// resuming was required.
    pub not_resumed: bool,
}

impl Tls {
    /// TLS on a transfer's two data connections, as asked, server side
    /// first (its handshake resumes the control session under `server`'s
    /// name and verification), then the client's (the proxy is the TLS
    /// server; `tickets` as in [`Tls::accept`]; with `client_reuse` a new
    /// session is refused). Blocking, each handshake until `deadline()`.
    pub fn secure_data(
        &self,
        (mut server, server_tls): (Channel, Option<(&str, bool)>),
        (mut client, client_tls): (Channel, bool),
        (tickets, client_reuse): (bool, bool),
        deadline: impl Fn() -> Instant,
    ) -> Result<(Channel, Channel), DataTlsError> {
        let failed = |client, why: String| DataTlsError {
            client,
            why,
            not_resumed: false,
        };
        if let Some((name, verify)) = server_tls {
            self.connect(name, verify)
                .and_then(|conn| server.handshake(conn, deadline()))
                .map_err(|e| failed(false, e.to_string()))?;
        }
        if client_tls {
            self.accept(tickets)
                .and_then(|conn| client.handshake(conn, deadline()))
                .map_err(|e| failed(true, e.to_string()))?;
            if client_reuse && !client.resumed() {
                return Err(DataTlsError {
                    client: true,
                    why: "the client made a new TLS session".into(),
                    not_resumed: true,
                });
            }
        }
        Ok((server, client))
    }
}

/// ServerTLSVerify no: any certificate is accepted, but the handshake's
/// signatures are still checked (the peer holds the key it shows).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TCP connection, with or without TLS on it.
pub struct Channel {
    pub sock: TcpStream,
    pub tls: Option<Box<Connection>>,
}

impl Channel {
    pub fn plain(sock: TcpStream) -> Channel {
        Channel { sock, tls: None }
    }

    /// Run the handshake of `conn` on this (blocking) socket until done or
    /// `deadline`; afterwards everything goes through TLS.
    pub fn handshake(&mut self, mut conn: Connection, deadline: Instant) -> io::Result<()> {
        while conn.is_handshaking() {
            if conn.wants_write() {
                conn.write_tls(&mut self.sock)?;
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !net::wait_readable(self.sock.as_fd(), left)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ));
            }
            if conn.read_tls(&mut self.sock)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during the TLS handshake",
                ));
            }
            if let Err(e) = conn.process_new_packets() {
                // Tell the peer why (an alert), as far as it listens.
                let _ = conn.write_tls(&mut self.sock);
                return Err(io::Error::other(e));
            }
        }
        while conn.wants_write() {
            conn.write_tls(&mut self.sock)?;
        }
        self.tls = Some(Box::new(conn));
        Ok(())
    }

    /// ("TLSv1.3", "TLS13_AES_256_GCM_SHA384") for the log.
    pub fn describe(&self) -> (String, String) {
        let Some(c) = &self.tls else {
            return ("plain".into(), String::new());
        };
        let version = match c.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        let suite = c
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        (version, suite)
    }

    /// The handshake resumed an earlier session.
    pub fn resumed(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|c| c.handshake_kind() == Some(HandshakeKind::Resumed))
    }

    /// Read what the peer sent, once (the socket is readable): all the
    /// plaintext there is now (empty when only TLS records without data
    /// came), or None at the end of the connection.
    pub fn read_available(&mut self, buf: &mut [u8]) -> io::Result<Option<Vec<u8>>> {
        let Some(conn) = self.tls.as_mut() else {
            let n = self.sock.read(buf)?;
            return Ok((n > 0).then(|| buf[..n].to_vec()));
        };
        let n = conn.read_tls(&mut self.sock)?;
        let state = conn.process_new_packets().map_err(io::Error::other)?;
        while conn.wants_write() {
            conn.write_tls(&mut self.sock)?;
        }
        let mut out = Vec::with_capacity(state.plaintext_bytes_to_read());
        loop {
            match conn.reader().read(buf) {
                Ok(0) => return Ok(if out.is_empty() { None } else { Some(out) }),
                Ok(k) => out.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(if out.is_empty() { None } else { Some(out) });
                }
                Err(e) => return Err(e),
            }
        }
        if n == 0 && out.is_empty() {
            return Ok(None);
        }
        Ok(Some(out))
    }

    /// Plaintext TLS has decrypted already (it came with the handshake's
    /// last records), which no poll would announce.
    pub fn buffered(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(conn) = self.tls.as_mut() {
            let mut buf = [0u8; 4096];
            while let Ok(n) = conn.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
        }
        out
    }

    /// Write all of `bytes` (blocking socket, with its write time-out).
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some(conn) = self.tls.as_mut() else {
            return self.sock.write_all(bytes);
        };
        conn.writer().write_all(bytes)?;
        while conn.wants_write() {
            conn.write_tls(&mut self.sock)?;
        }
        Ok(())
    }

    /// Send close_notify (TLS) as far as the socket takes it now.
    pub fn close_notify(&mut self) {
        if let Some(conn) = self.tls.as_mut() {
            conn.send_close_notify();
            let deadline = Instant::now() + Duration::from_secs(1);
            while conn.wants_write() && Instant::now() < deadline {
                match conn.write_tls(&mut self.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let _ = net::wait_writable(self.sock.as_fd(), Duration::from_millis(100));
                    }
                    Err(_) => break,
                }
            }
        }
    }
}
