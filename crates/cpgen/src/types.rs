//! Newtypes for the values a cluster description is made of. Each is built only through
//! `FromStr`/`TryFrom`, so a value of one of these types is valid by construction and the
//! rest of the crate never re-checks it.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU16;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Serialize;

/// Why a string is not a DNS-1123 name; the text is meant for a diagnostic's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("the name is empty")]
    Empty,
    /// The whole name is longer than 253 characters.
    #[error("the name is {0} characters long; DNS names have at most 253")]
    TooLong(usize),
    /// One dot-separated label is empty or longer than 63 characters.
    #[error("label `{0}` must be 1 to 63 characters long")]
    BadLabelLength(String),
    /// A character outside `a-z`, `0-9`, `-` and `.`.
    #[error("`{0}` is not allowed: use lowercase letters, digits, `-` and `.`")]
    BadChar(char),
    /// A label starts or ends with `-`.
    #[error("label `{0}` must start and end with a letter or digit")]
    BadLabelEdge(String),
    /// The last label is a number, so resolvers may read the name as an IPv4 address.
    #[error("`{0}` ends in a number, and resolvers read names like it (`010.10.10.2`, `0x0a0a0a02`, `168430082`) as IPv4 addresses, often not the one meant; write an address in dotted decimal, or a name whose last label has a letter")]
    Numeric(String),
}

/// A DNS-1123 subdomain: lowercase labels of letters, digits and `-`, joined by dots.
/// Used for host names, the cluster name, the DNS domain and DNS SANs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DnsName(String);

impl DnsName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `*.example.com`, which only a certificate may carry.
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }
}

impl FromStr for DnsName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > 253 {
            return Err(NameError::TooLong(s.len()));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
        {
            return Err(NameError::BadChar(bad));
        }
        for label in s.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(NameError::BadLabelLength(label.to_owned()));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(NameError::BadLabelEdge(label.to_owned()));
            }
        }
        // RFC 1123 2.1: the top label of a host name is never numeric, because inet_aton
        // accepts octal, hex and fewer than four parts.
        let last = s.rsplit('.').next().unwrap_or(s);
        let hex = last
            .strip_prefix("0x")
            .is_some_and(|digits| digits.chars().all(|c| c.is_ascii_hexdigit()));
        if hex || last.chars().all(|c| c.is_ascii_digit()) {
            return Err(NameError::Numeric(s.to_owned()));
        }
        Ok(DnsName(s.to_owned()))
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a machine: a DNS-1123 name that is also used as the etcd member name and
/// as the directory of the host's files in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HostName(DnsName);

impl HostName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The same name as a DNS name (for SANs).
    pub fn as_dns_name(&self) -> &DnsName {
        &self.0
    }
}

impl FromStr for HostName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        s.parse().map(HostName)
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a string is not a usable machine address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Not an IPv4 or IPv6 address at all.
    #[error("`{0}` is not an IPv4 or IPv6 address")]
    Syntax(String),
    /// `0.0.0.0` or `::`, which is a wildcard, not a machine.
    #[error("`{0}` is the unspecified address; give the machine's own address")]
    Unspecified(IpAddr),
    /// A multicast address cannot be a machine's address.
    #[error("`{0}` is a multicast address")]
    Multicast(IpAddr),
    /// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`): the same machine as the IPv4
    /// address, which a comparison of the two forms would miss.
    #[error("`{0}` is the IPv4 address {1} written as IPv6; write {1}")]
    Ipv4InIpv6(IpAddr, std::net::Ipv4Addr),
    /// An IPv4 address no machine can have: broadcast, `0.0.0.0/8` or the reserved
    /// `240.0.0.0/4`.
    #[error("`{0}` is a broadcast or reserved IPv4 address, which no machine can have")]
    Reserved(IpAddr),
}

/// The address of one machine (or a virtual IP): a unicast IPv4 or IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct HostAddress(IpAddr);

impl HostAddress {
    /// The address itself.
    pub fn ip(self) -> IpAddr {
        self.0
    }

    /// The address as it appears in a URL or `host:port` (IPv6 in brackets).
    pub fn url_host(self) -> String {
        url_host(self.0)
    }
}

/// An IP address as it appears in a URL or `host:port`: IPv6 in brackets.
pub(crate) fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

impl FromStr for HostAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, AddressError> {
        let ip: IpAddr = s.parse().map_err(|_| AddressError::Syntax(s.to_owned()))?;
        if ip.is_unspecified() {
            return Err(AddressError::Unspecified(ip));
        }
        if ip.is_multicast() {
            return Err(AddressError::Multicast(ip));
        }
        match ip {
            IpAddr::V6(v6) => {
                // `::ffff:a.b.c.d` (mapped) and the deprecated `::a.b.c.d` (compatible).
                let segments = v6.segments();
                if segments[..5] == [0; 5] && matches!(segments[5], 0 | 0xffff) {
                    if let Some(v4) = v6.to_ipv4() {
                        if !v4.is_unspecified() && v6 != std::net::Ipv6Addr::LOCALHOST {
                            return Err(AddressError::Ipv4InIpv6(ip, v4));
                        }
                    }
                }
            }
            IpAddr::V4(v4) => {
                let first = v4.octets()[0];
                if v4.is_broadcast() || first == 0 || first >= 240 {
                    return Err(AddressError::Reserved(ip));
                }
            }
        }
        Ok(HostAddress(ip))
    }
}

impl fmt::Display for HostAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a string is not a network in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// Not `address/prefix`.
    #[error("`{0}` is not a network in CIDR notation (like 10.32.0.0/16 or fd00::/108)")]
    Syntax(String),
    /// Bits are set below the prefix, so the text names an address, not a network.
    #[error("`{given}` has host bits set; the network is {network}")]
    HostBits {
        /// What was written.
        given: String,
        /// The network it lies in.
        network: IpNet,
    },
}

/// A network in CIDR notation whose host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Cidr(IpNet);

impl Cidr {
    /// The network.
    pub fn net(self) -> IpNet {
        self.0
    }

    /// True when the two networks share at least one address.
    pub fn overlaps(self, other: Cidr) -> bool {
        self.0.contains(&other.0) || other.0.contains(&self.0)
    }

    /// True when the address lies in this network.
    pub fn contains(self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }

    /// The first usable address, which Kubernetes gives to the `kubernetes` service.
    pub fn first_host(self) -> IpAddr {
        match self.0 {
            IpNet::V4(net) => IpAddr::V4((u32::from(net.network()).saturating_add(1)).into()),
            IpNet::V6(net) => IpAddr::V6((u128::from(net.network()).saturating_add(1)).into()),
        }
    }

    /// The address `n` past the network address, if the network holds it: the 10th is the
    /// cluster DNS service's, by the convention kubeadm and CoreDNS's manifests share.
    pub fn nth_host(self, n: u32) -> Option<IpAddr> {
        let ip = match self.0 {
            IpNet::V4(net) => IpAddr::V4(u32::from(net.network()).checked_add(n)?.into()),
            IpNet::V6(net) => {
                IpAddr::V6(u128::from(net.network()).checked_add(u128::from(n))?.into())
            }
        };
        self.0.contains(&ip).then_some(ip)
    }

    /// True for an IPv6 network.
    pub fn is_ipv6(self) -> bool {
        matches!(self.0, IpNet::V6(_))
    }

    /// The network of `prefix` bits that holds `ip`; `None` for a prefix longer than the
    /// address.
    pub fn around(ip: IpAddr, prefix: u8) -> Option<Cidr> {
        IpNet::new(ip, prefix).ok().map(|net| Cidr(net.trunc()))
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, CidrError> {
        let net: IpNet = s.parse().map_err(|_| CidrError::Syntax(s.to_owned()))?;
        if net.trunc() != net {
            return Err(CidrError::HostBits {
                given: s.to_owned(),
                network: net.trunc(),
            });
        }
        Ok(Cidr(net))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A TCP port, 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Port(NonZeroU16);

impl Port {
    /// The port number.
    pub fn get(self) -> u16 {
        self.0.get()
    }

    /// A port known at compile time to be non-zero; `None` for 0.
    pub const fn new(port: u16) -> Option<Port> {
        match NonZeroU16::new(port) {
            Some(p) => Some(Port(p)),
            None => None,
        }
    }
}

/// The number is not a TCP port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a TCP port; ports are 1 to 65535")]
pub struct PortError(pub i64);

impl TryFrom<i64> for Port {
    type Error = PortError;

    fn try_from(n: i64) -> Result<Self, PortError> {
        u16::try_from(n)
            .ok()
            .and_then(NonZeroU16::new)
            .map(Port)
            .ok_or(PortError(n))
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a string is not a port range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortRangeError {
    /// Not `LOW-HIGH`.
    #[error("`{0}` is not a port range like 30000-32767")]
    Syntax(String),
    /// An end is not a port.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The low end is above the high end.
    #[error("the range starts at {low} but ends at {high}")]
    Reversed {
        /// Low end.
        low: u16,
        /// High end.
        high: u16,
    },
}

/// An inclusive range of TCP ports, `low <= high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRange {
    low: Port,
    high: Port,
}

impl PortRange {
    /// True when the port is inside the range.
    pub fn contains(self, port: Port) -> bool {
        self.low <= port && port <= self.high
    }
}

impl FromStr for PortRange {
    type Err = PortRangeError;

    fn from_str(s: &str) -> Result<Self, PortRangeError> {
        let syntax = || PortRangeError::Syntax(s.to_owned());
        let (low, high) = s.split_once('-').ok_or_else(syntax)?;
        let number = |t: &str| t.trim().parse::<i64>().map_err(|_| syntax());
        let low = Port::try_from(number(low)?)?;
        let high = Port::try_from(number(high)?)?;
        if low > high {
            return Err(PortRangeError::Reversed {
                low: low.get(),
                high: high.get(),
            });
        }
        Ok(PortRange { low, high })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

/// The algorithm of every private key cpgen generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    /// RSA, 2048-bit modulus.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA, 3072-bit modulus.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA, 4096-bit modulus.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    /// Ed25519: fine for TLS in Go programs, but Kubernetes cannot sign service-account
    /// tokens with it.
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl KeyAlgorithm {
    /// Every algorithm with its configuration name.
    pub const ALL: [(&'static str, KeyAlgorithm); 6] = [
        ("ecdsa-p256", KeyAlgorithm::EcdsaP256),
        ("ecdsa-p384", KeyAlgorithm::EcdsaP384),
        ("rsa-2048", KeyAlgorithm::Rsa2048),
        ("rsa-3072", KeyAlgorithm::Rsa3072),
        ("rsa-4096", KeyAlgorithm::Rsa4096),
        ("ed25519", KeyAlgorithm::Ed25519),
    ];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, alg)| *alg == self)
            .map_or("?", |(name, _)| name)
    }

    /// True when kube-apiserver can sign service-account tokens with such a key
    /// (it accepts RSA and ECDSA only).
    pub fn can_sign_service_accounts(self) -> bool {
        !matches!(self, KeyAlgorithm::Ed25519)
    }
}

/// The string names no key algorithm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a key algorithm")]
pub struct KeyAlgorithmError(pub String);

impl FromStr for KeyAlgorithm {
    type Err = KeyAlgorithmError;

    fn from_str(s: &str) -> Result<Self, KeyAlgorithmError> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, alg)| *alg)
            .ok_or_else(|| KeyAlgorithmError(s.to_owned()))
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Kubernetes release, `1.MINOR` with an optional patch; cpgen's output depends on the
/// minor only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubernetesVersion {
    minor: u16,
    patch: Option<u16>,
}

impl KubernetesVersion {
    /// Oldest minor cpgen emits flags for.
    pub const OLDEST: KubernetesVersion = KubernetesVersion::new(29);
    /// Newest minor cpgen emits flags for.
    pub const NEWEST: KubernetesVersion = KubernetesVersion::new(34);

    /// `1.minor`.
    pub const fn new(minor: u16) -> KubernetesVersion {
        KubernetesVersion { minor, patch: None }
    }

    /// The minor version.
    pub const fn minor(self) -> u16 {
        self.minor
    }

    /// True inside the range cpgen supports.
    pub fn is_supported(self) -> bool {
        (Self::OLDEST.minor..=Self::NEWEST.minor).contains(&self.minor)
    }
}

/// The string is not a Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Kubernetes version like \"1.31\" or \"1.31.4\"")]
pub struct VersionError(pub String);

impl FromStr for KubernetesVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, VersionError> {
        let err = || VersionError(s.to_owned());
        let digits = s.strip_prefix('v').unwrap_or(s);
        let mut parts = digits.split('.');
        let number = |p: Option<&str>| -> Result<u16, VersionError> {
            let p = p.ok_or_else(err)?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        if number(parts.next())? != 1 {
            return Err(err());
        }
        let minor = number(parts.next())?;
        let patch = parts.next().map(|p| number(Some(p))).transpose()?;
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(KubernetesVersion { minor, patch })
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(patch) => write!(f, "1.{}.{patch}", self.minor),
            None => write!(f, "1.{}", self.minor),
        }
    }
}

impl Serialize for KubernetesVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A validity period in whole days, at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ValidityDays(u32);

impl ValidityDays {
    /// Number of days.
    pub fn days(self) -> u32 {
        self.0
    }
}

/// The number is not a usable validity period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a validity period; give a whole number of days from 1 to 36500")]
pub struct ValidityError(pub i64);

impl TryFrom<i64> for ValidityDays {
    type Error = ValidityError;

    fn try_from(n: i64) -> Result<Self, ValidityError> {
        match u32::try_from(n) {
            Ok(days @ 1..=36500) => Ok(ValidityDays(days)),
            _ => Err(ValidityError(n)),
        }
    }
}

/// How long one network exchange may take: `500ms`, `3s`, `2m`; from 1 ms to 10 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout(std::time::Duration);

impl Timeout {
    /// The longest timeout: a dial that needs more is not answering.
    pub const MAX: Timeout = Timeout(std::time::Duration::from_secs(600));

    /// The duration.
    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

/// The text is not a timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a timeout; give a whole number with a unit, from 1ms to 10m: 500ms, 3s, 2m")]
pub struct TimeoutError(pub String);

impl FromStr for Timeout {
    type Err = TimeoutError;

    fn from_str(text: &str) -> Result<Timeout, TimeoutError> {
        let error = || TimeoutError(text.to_owned());
        let digits = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(error)?;
        let (number, unit) = text.split_at(digits);
        let number: u64 = number.parse().map_err(|_| error())?;
        let millis = match unit {
            "ms" => Some(number),
            "s" => number.checked_mul(1000),
            "m" => number.checked_mul(60_000),
            _ => None,
        }
        .ok_or_else(error)?;
        let duration = std::time::Duration::from_millis(millis);
        if duration.is_zero() || duration > Timeout::MAX.0 {
            return Err(error());
        }
        Ok(Timeout(duration))
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        match millis {
            m if m % 60_000 == 0 => write!(f, "{}m", m / 60_000),
            m if m % 1000 == 0 => write!(f, "{}s", m / 1000),
            m => write!(f, "{m}ms"),
        }
    }
}

impl Default for Timeout {
    /// Three seconds: a TLS handshake on a working network takes milliseconds.
    fn default() -> Timeout {
        Timeout(std::time::Duration::from_secs(3))
    }
}

/// Where the kubelet reaches the container runtime: `unix://` and the absolute path of its
/// socket (`unix:///run/containerd/containerd.sock`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RuntimeEndpoint(String);

impl RuntimeEndpoint {
    /// The endpoint as the kubelet takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The text is not a container runtime endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` is not a container runtime endpoint; give unix:// and the socket's absolute path, e.g. unix:///run/containerd/containerd.sock", .0.escape_debug())]
pub struct RuntimeEndpointError(pub String);

impl FromStr for RuntimeEndpoint {
    type Err = RuntimeEndpointError;

    fn from_str(text: &str) -> Result<RuntimeEndpoint, RuntimeEndpointError> {
        let error = || RuntimeEndpointError(text.to_owned());
        let path = text.strip_prefix("unix://").ok_or_else(error)?;
        // A socket path is at most 107 bytes (sun_path); the endpoint lands in YAML and in
        // the bundle README, so only plain path characters pass.
        let plain = |c: char| c.is_ascii_alphanumeric() || "/._-".contains(c);
        // One spelling per socket: no empty, `.` or `..` segment, no trailing slash.
        let well_formed = path.len() <= 107
            && path.chars().all(plain)
            && path.strip_prefix('/').is_some_and(|rest| {
                rest.split('/')
                    .all(|part| !part.is_empty() && part != "." && part != "..")
            });
        if well_formed {
            Ok(RuntimeEndpoint(text.to_owned()))
        } else {
            Err(error())
        }
    }
}

impl fmt::Display for RuntimeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A name a client dials, as it appears in a certificate's subjectAltName.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum San {
    /// A DNS name.
    Dns(DnsName),
    /// An IP address.
    Ip(IpAddr),
}

impl FromStr for San {
    type Err = NameError;

    /// An IP address if the text is one, otherwise a DNS name, which may start with a
    /// `*.` wildcard label.
    fn from_str(s: &str) -> Result<Self, NameError> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        match s.strip_prefix("*.") {
            Some(rest) => rest
                .parse::<DnsName>()
                .map(|_| San::Dns(DnsName(s.to_owned()))),
            None => s.parse().map(San::Dns),
        }
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(name) => name.fmt(f),
            San::Ip(ip) => ip.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_endpoints_are_unix_sockets_by_absolute_path() {
        for good in [
            "unix:///run/containerd/containerd.sock",
            "unix:///var/run/crio/crio.sock",
        ] {
            assert_eq!(good.parse::<RuntimeEndpoint>().unwrap().as_str(), good);
        }
        let long = format!("unix:///{}", "a".repeat(107));
        for wrong in [
            "",
            "/run/containerd/containerd.sock",
            "tcp://127.0.0.1:1234",
            "unix://run/containerd.sock",
            "unix:///",
            "unix:///run/x y.sock",
            "unix:///run/\"x\".sock",
            "unix:///run/../etc/shadow",
            "unix:///var/run/crio/",
            "unix:////var//run/crio.sock",
            "unix:///var/run/./crio.sock",
            long.as_str(),
        ] {
            assert!(
                wrong.parse::<RuntimeEndpoint>().is_err(),
                "{wrong} was taken"
            );
        }
    }

    #[test]
    fn the_nth_host_stays_inside_the_network() {
        let cidr = |text: &str| text.parse::<Cidr>().unwrap();
        assert_eq!(
            cidr("10.32.0.0/16").nth_host(10),
            Some("10.32.0.10".parse().unwrap())
        );
        assert_eq!(
            cidr("fd00:10:32::/108").nth_host(10),
            Some("fd00:10:32::a".parse().unwrap())
        );
        assert_eq!(cidr("10.32.0.0/29").nth_host(10), None);
        assert_eq!(cidr("255.255.255.252/30").nth_host(10), None);
    }

    #[test]
    fn timeouts_have_a_unit_and_bounds() {
        let ms = |text: &str| text.parse::<Timeout>().map(|t| t.get().as_millis());
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("3s"), Ok(3000));
        assert_eq!(ms("10m"), Ok(600_000));
        for wrong in [
            "",
            "3",
            "s",
            "0s",
            "11m",
            "-1s",
            "1.5s",
            "3 s",
            "3h",
            "99999999999999999999s",
        ] {
            assert!(wrong.parse::<Timeout>().is_err(), "{wrong} was taken");
        }
        assert_eq!(Timeout::default().to_string(), "3s");
        assert_eq!("1500ms".parse::<Timeout>().unwrap().to_string(), "1500ms");
        assert_eq!("120s".parse::<Timeout>().unwrap().to_string(), "2m");
    }

    #[test]
    fn dns_names_follow_rfc_1123() {
        assert!("kubem00".parse::<DnsName>().is_ok());
        assert!("api.example.com".parse::<DnsName>().is_ok());
        assert_eq!("Kubem00".parse::<DnsName>(), Err(NameError::BadChar('K')));
        assert_eq!("kube_m".parse::<DnsName>(), Err(NameError::BadChar('_')));
        assert!(matches!(
            "-a".parse::<DnsName>(),
            Err(NameError::BadLabelEdge(_))
        ));
        assert!(matches!(
            "a..b".parse::<DnsName>(),
            Err(NameError::BadLabelLength(_))
        ));
        assert!(matches!(
            "a".repeat(64).parse::<DnsName>(),
            Err(NameError::BadLabelLength(_))
        ));
        assert_eq!("".parse::<DnsName>(), Err(NameError::Empty));
    }

    #[test]
    fn one_machine_has_one_way_to_write_its_address() {
        for (text, refused) in [
            ("::ffff:10.10.10.80", true),
            ("::10.10.10.80", true),
            ("255.255.255.255", true),
            ("0.1.2.3", true),
            ("240.0.0.1", true),
            ("10.10.10.80", false),
            ("127.0.1.80", false),
            ("::1", false),
            ("fd00:10:10::80", false),
        ] {
            assert_eq!(text.parse::<HostAddress>().is_err(), refused, "{text}");
        }
        assert_eq!(
            "::ffff:10.10.10.80".parse::<HostAddress>(),
            Err(AddressError::Ipv4InIpv6(
                "::ffff:10.10.10.80".parse().unwrap(),
                "10.10.10.80".parse().unwrap()
            ))
        );
    }

    #[test]
    fn names_that_resolvers_read_as_addresses_are_refused() {
        for numeric in [
            "010.10.10.2",
            "168430082",
            "0x0a0a0a02",
            "10.10.2",
            "123",
            "a.b.9",
        ] {
            assert!(
                matches!(numeric.parse::<DnsName>(), Err(NameError::Numeric(_))),
                "{numeric}"
            );
        }
        for name in ["k8s", "node1", "10.example.com", "0xab.example", "x-1.io"] {
            assert!(name.parse::<DnsName>().is_ok(), "{name}");
        }
    }

    #[test]
    fn cidrs_reject_host_bits_and_name_the_network() {
        let err = "10.32.0.1/16".parse::<Cidr>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`10.32.0.1/16` has host bits set; the network is 10.32.0.0/16"
        );
        let net: Cidr = "10.32.0.0/16".parse().unwrap();
        assert_eq!(net.first_host().to_string(), "10.32.0.1");
        let v6: Cidr = "fd00:10:96::/108".parse().unwrap();
        assert_eq!(v6.first_host().to_string(), "fd00:10:96::1");
    }

    #[test]
    fn ports_and_ranges() {
        assert!(Port::try_from(0).is_err());
        assert!(Port::try_from(65536).is_err());
        assert_eq!(Port::try_from(6443).unwrap().get(), 6443);
        let range: PortRange = "30000-32767".parse().unwrap();
        assert!(range.contains(Port::try_from(30000).unwrap()));
        assert!(!range.contains(Port::try_from(6443).unwrap()));
        assert!(matches!(
            "32767-30000".parse::<PortRange>(),
            Err(PortRangeError::Reversed { .. })
        ));
        assert!(matches!(
            "30000".parse::<PortRange>(),
            Err(PortRangeError::Syntax(_))
        ));
    }

    #[test]
    fn versions() {
        let v: KubernetesVersion = "1.31".parse().unwrap();
        assert_eq!(v.minor(), 31);
        assert!(v.is_supported());
        assert_eq!(
            "v1.34.2".parse::<KubernetesVersion>().unwrap().to_string(),
            "1.34.2"
        );
        assert!(!"1.28".parse::<KubernetesVersion>().unwrap().is_supported());
        for bad in ["2.31", "1", "1.x", "1.31.2.1", "1.+3", ""] {
            assert!(bad.parse::<KubernetesVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_reject_wildcards() {
        assert!("0.0.0.0".parse::<HostAddress>().is_err());
        assert!("::".parse::<HostAddress>().is_err());
        assert!("224.0.0.1".parse::<HostAddress>().is_err());
        assert_eq!(
            "fd00::80".parse::<HostAddress>().unwrap().url_host(),
            "[fd00::80]"
        );
    }
}
