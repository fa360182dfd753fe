//! One dial: TCP connect, a TLS handshake that records what the server presents (and checks
//! that the server holds that certificate's key), and for etcd and kube-apiserver one
//! read-only `GET` of a health path; all of it bounded by one deadline.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use zeroize::Zeroizing;

use crate::types::Timeout;

/// What is dialled: an address, or a name resolved at dial time as any client resolves it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Address {
    /// An IP address.
    Ip(IpAddr),
    /// A DNS name.
    Name(String),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Address::Ip(ip) => write!(f, "{ip}"),
            Address::Name(name) => f.write_str(name),
        }
    }
}

impl Address {
    /// As a SAN would name it (no brackets).
    pub(super) fn san(&self) -> String {
        match self {
            Address::Ip(ip) => ip.to_string(),
            Address::Name(name) => name.clone(),
        }
    }
}

/// A client certificate chain and its key, presented where the server asks for one.
pub(super) struct Identity {
    /// The certificate, first, and any chain after it (DER).
    pub(super) chain: Vec<Vec<u8>>,
    /// The key as its PEM label says (`PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`).
    pub(super) key_label: String,
    /// The key's DER, wiped on drop.
    pub(super) key_der: Zeroizing<Vec<u8>>,
}

/// What one dial asks for.
pub(super) struct Request<'a> {
    pub(super) address: &'a Address,
    pub(super) port: u16,
    pub(super) identity: Option<&'a Identity>,
    /// The path of the one health request, if the service has one.
    pub(super) health_path: Option<&'static str>,
    pub(super) timeout: Timeout,
}

/// Why no certificate came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Silence {
    /// The name does not resolve.
    NoAddress,
    /// Nothing listens (connection refused).
    Refused,
    /// No answer before the deadline: a dead host, a firewall, or a listener that never
    /// speaks TLS.
    TimedOut,
    /// The peer answered with something that is not TLS, or closed the connection.
    NoTls,
    /// Anything else the network said.
    Failed,
}

/// The answer to a health request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HealthAnswer {
    /// The HTTP status code.
    Status(u16),
    /// No HTTP answer (closed, timed out, refused our identity).
    Failed(String),
}

/// What the server did.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    /// No certificate came back.
    Silent { why: Silence, message: String },
    /// The server presented a certificate chain.
    Served {
        /// DER, leaf first.
        chain: Vec<Vec<u8>>,
        /// The server's handshake signature does not verify with the key of the
        /// certificate it presented: it does not hold that key.
        impostor: bool,
        /// The handshake failed after the certificate (e.g. our identity was refused).
        handshake_error: Option<String>,
        /// The health request's answer, when one was made.
        health: Option<HealthAnswer>,
    },
}

/// Dials `request` and reports what came back, never taking much longer than its timeout.
pub(super) fn dial(request: &Request<'_>) -> Outcome {
    let deadline = Instant::now() + request.timeout.get();
    let silent = |why, message: String| Outcome::Silent { why, message };
    let addresses = match resolve(request.address, request.port, deadline) {
        Ok(addresses) => addresses,
        Err(message) => return silent(Silence::NoAddress, message),
    };
    let tcp = match connect(&addresses, deadline) {
        Ok(tcp) => tcp,
        Err(error) => return silent(silence_of(&error), describe(&error, request.timeout)),
    };
    let recorder = Arc::new(Recorder::default());
    let mut connection = match client(request, Arc::clone(&recorder)) {
        Ok(connection) => connection,
        Err(message) => return silent(Silence::Failed, message),
    };
    let mut stream = DeadlineStream { tcp, deadline };
    let handshake = handshake(&mut connection, &mut stream);
    let seen = recorder.take();
    let Some(chain) = seen.chain else {
        let error = handshake
            .err()
            .unwrap_or_else(|| io::ErrorKind::UnexpectedEof.into());
        return silent(silence_of(&error), describe(&error, request.timeout));
    };
    let health = match (&handshake, request.health_path) {
        (Ok(()), Some(path)) => Some(health(
            &mut connection,
            &mut stream,
            request.address,
            path,
            request.timeout,
        )),
        _ => None,
    };
    Outcome::Served {
        chain,
        impostor: seen.impostor,
        handshake_error: handshake.err().map(|e| describe(&e, request.timeout)),
        health,
    }
}

fn resolve(address: &Address, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, String> {
    let name = match address {
        Address::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
        Address::Name(name) => name.clone(),
    };
    // getaddrinfo cannot be given a deadline: it runs on a thread of its own that is left
    // behind if it outlasts the dial.
    let (send, receive) = mpsc::channel();
    let lookup = name.clone();
    let spawned = std::thread::Builder::new()
        .name("cpgen-probe-resolve".to_owned())
        .spawn(move || {
            let found = (lookup.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>);
            let _ = send.send(found);
        });
    if let Err(error) = spawned {
        return Err(format!("cannot look {name} up: {error}"));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    match receive.recv_timeout(left) {
        Ok(Ok(found)) if !found.is_empty() => Ok(found),
        Ok(Ok(_)) => Err(format!("{name} resolves to no address")),
        Ok(Err(error)) => Err(format!("{name} does not resolve: {error}")),
        Err(_) => Err(format!("looking {name} up timed out")),
    }
}

fn connect(addresses: &[SocketAddr], deadline: Instant) -> io::Result<TcpStream> {
    let mut last = io::Error::from(io::ErrorKind::TimedOut);
    for address in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        match TcpStream::connect_timeout(address, left) {
            Ok(tcp) => {
                // Few small writes: no reason to wait for acknowledgements.
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}

fn client(request: &Request<'_>, recorder: Arc<Recorder>) -> Result<ClientConnection, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Recording {
        provider: Arc::clone(&provider),
        recorder,
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match request.identity {
        Some(identity) => {
            let chain = identity
                .chain
                .iter()
                .map(|der| CertificateDer::from(der.clone()))
                .collect();
            builder
                .with_client_auth_cert(chain, private_key(identity)?)
                .map_err(|e| format!("the bundle's client identity cannot be used: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    let name = match request.address {
        Address::Ip(ip) => ServerName::IpAddress((*ip).into()),
        Address::Name(name) => ServerName::try_from(name.clone())
            .map_err(|_| format!("{name} is not a name TLS can be asked for"))?,
    };
    ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())
}

fn private_key(identity: &Identity) -> Result<PrivateKeyDer<'static>, String> {
    let der = identity.key_der.to_vec();
    match identity.key_label.as_str() {
        "PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs8(der.into())),
        "EC PRIVATE KEY" => Ok(PrivateKeyDer::Sec1(der.into())),
        "RSA PRIVATE KEY" => Ok(PrivateKeyDer::Pkcs1(der.into())),
        other => Err(format!("a key labelled {other} cannot be used")),
    }
}

fn handshake(connection: &mut ClientConnection, stream: &mut DeadlineStream) -> io::Result<()> {
    while connection.is_handshaking() {
        connection.complete_io(stream)?;
    }
    // The client's last flight may still wait to be sent; nothing more is read here (a
    // TLS 1.2 server sends nothing until asked, and waiting for it would cost the timeout).
    while connection.wants_write() {
        connection.write_tls(stream)?;
    }
    Ok(())
}

/// One `GET path`; only the status line is read.
fn health(
    connection: &mut ClientConnection,
    stream: &mut DeadlineStream,
    address: &Address,
    path: &str,
    timeout: Timeout,
) -> HealthAnswer {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: cpgen-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let mut tls = rustls::Stream::new(connection, stream);
    if let Err(error) = tls.write_all(request.as_bytes()).and_then(|()| tls.flush()) {
        return HealthAnswer::Failed(describe(&error, timeout));
    }
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    // The status line is the first line; a server that sends kilobytes without one is not
    // answering HTTP.
    while !head.contains(&b'\n') && head.len() < 4096 {
        match tls.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
            Err(error) => return HealthAnswer::Failed(describe(&error, timeout)),
        }
    }
    status_code(&head).map_or_else(
        || HealthAnswer::Failed("no HTTP status line in the answer".to_owned()),
        HealthAnswer::Status,
    )
}

/// The code of an `HTTP/1.x NNN ...` status line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = words.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

fn silence_of(error: &io::Error) -> Silence {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => Silence::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Silence::TimedOut,
        io::ErrorKind::InvalidData
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Silence::NoTls,
        _ => Silence::Failed,
    }
}

fn describe(error: &io::Error, timeout: Timeout) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused: nothing listens".to_owned(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("no answer within {timeout}")
        }
        io::ErrorKind::UnexpectedEof => "the peer closed the connection".to_owned(),
        _ => error.to_string(),
    }
}

/// A TCP stream whose reads and writes give up at one deadline for the whole dial, so a
/// peer that trickles bytes cannot stretch it.
struct DeadlineStream {
    tcp: TcpStream,
    deadline: Instant,
}

impl DeadlineStream {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::ErrorKind::TimedOut.into())
        } else {
            Ok(left)
        }
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        self.tcp.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// What the verifier saw during one handshake.
#[derive(Debug, Default)]
struct Seen {
    chain: Option<Vec<Vec<u8>>>,
    impostor: bool,
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Seen>);

impl Recorder {
    fn with<T>(&self, f: impl FnOnce(&mut Seen) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn take(&self) -> Seen {
        self.with(std::mem::take)
    }
}

/// Accepts any certificate chain (the comparison with the bundle comes after, and must see
/// what a wrong server serves) but records it, and checks the handshake signature like any
/// client: a server that replays a certificate without its key is caught.
#[derive(Debug)]
struct Recording {
    provider: Arc<CryptoProvider>,
    recorder: Arc<Recorder>,
}

impl Recording {
    fn checked(
        &self,
        verified: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if verified.is_err() {
            self.recorder.with(|seen| seen.impostor = true);
        }
        verified
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|der| der.as_ref().to_vec())
            .collect();
        self.recorder.with(|seen| seen.chain = Some(chain));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.checked(verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.checked(verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 20000 no\r\n"), None);
        assert_eq!(status_code(b""), None);
    }

    #[test]
    fn a_listener_that_never_speaks_costs_one_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = Address::Ip("127.0.0.1".parse().unwrap());
        let outcome = dial(&Request {
            address: &address,
            port,
            identity: None,
            health_path: None,
            timeout: "200ms".parse().unwrap(),
        });
        match outcome {
            Outcome::Silent { why, .. } => assert_eq!(why, Silence::TimedOut),
            other => panic!("{other:?}"),
        }
        drop(listener);
    }

    #[test]
    fn a_listener_that_speaks_something_else_is_no_tls() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut peer, _) = listener.accept().unwrap();
            let _ = peer.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        });
        let address = Address::Ip("127.0.0.1".parse().unwrap());
        let outcome = dial(&Request {
            address: &address,
            port,
            identity: None,
            health_path: None,
            timeout: "5s".parse().unwrap(),
        });
        server.join().unwrap();
        match outcome {
            Outcome::Silent { why, .. } => assert_eq!(why, Silence::NoTls, "{outcome:?}"),
            other => panic!("{other:?}"),
        }
    }

    /// Serves one TLS connection at a loopback port with `cert` and whatever `key` signs
    /// the handshake, as a server that copied a certificate without its key would.
    fn serve_once(
        cert: &rcgen::Certificate,
        key: &rcgen::KeyPair,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (u16, std::thread::JoinHandle<()>) {
        use rustls::server::{ClientHello, ResolvesServerCert};
        use rustls::sign::CertifiedKey;

        #[derive(Debug)]
        struct Fixed(Arc<CertifiedKey>);
        impl ResolvesServerCert for Fixed {
            fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
                Some(Arc::clone(&self.0))
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let signing = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(key.serialize_der().into()))
            .unwrap();
        let certified = Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(certified)));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            let mut connection = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            while connection.is_handshaking() {
                if connection.complete_io(&mut tcp).is_err() {
                    return;
                }
            }
            // Silent until the client hangs up, as a kubelet or etcd's peer port is.
            while connection
                .complete_io(&mut tcp)
                .is_ok_and(|(read, _)| read > 0)
            {}
        });
        (port, server)
    }

    /// Whether the server was found to lack its certificate's key, and whatever went wrong
    /// after the certificate.
    fn dial_served(port: u16) -> (bool, Option<String>) {
        let address = Address::Ip("127.0.0.1".parse().unwrap());
        match dial(&Request {
            address: &address,
            port,
            identity: None,
            health_path: None,
            timeout: "2s".parse().unwrap(),
        }) {
            Outcome::Served {
                impostor,
                handshake_error,
                ..
            } => (impostor, handshake_error),
            other => panic!("{other:?}"),
        }
    }

    fn a_certificate() -> (rcgen::Certificate, rcgen::KeyPair) {
        let owner = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&owner)
            .unwrap();
        (cert, owner)
    }

    #[test]
    fn a_silent_server_after_the_handshake_is_no_error_in_either_version() {
        let (cert, owner) = a_certificate();
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let (port, server) = serve_once(&cert, &owner, &[version]);
            assert_eq!(dial_served(port), (false, None), "{version:?}");
            server.join().unwrap();
        }
    }

    #[test]
    fn a_server_without_its_certificates_key_is_caught() {
        let (cert, owner) = a_certificate();
        let thief = rcgen::KeyPair::generate().unwrap();
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let (port, server) = serve_once(&cert, &owner, &[version]);
            assert!(
                !dial_served(port).0,
                "the key's owner was called an impostor"
            );
            server.join().unwrap();
            let (port, server) = serve_once(&cert, &thief, &[version]);
            assert!(
                dial_served(port).0,
                "a server without the key passed ({version:?})"
            );
            server.join().unwrap();
        }
    }
}
