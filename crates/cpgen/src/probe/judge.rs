//! What a dial's answer means for the cluster: the endpoint's status against the bundle, in
//! words, and what the operator runs to fix it.

use time::OffsetDateTime;

use super::dial::{HealthAnswer, Outcome, Silence};
use super::targets::{Gap, Target};
use super::{Age, CertSummary, Endpoint, Health, Service, Status};
use crate::verify::{CertInfo, Validity};

/// The report of one endpoint from what it answered at `now`.
pub(super) fn judge(target: &Target, outcome: Outcome, now: OffsetDateTime) -> Endpoint {
    let mut endpoint = Endpoint {
        endpoint: target.url(),
        host: target.host.clone(),
        service: target.service,
        status: Status::Unreachable,
        detail: String::new(),
        fix: None,
        served: None,
        expected: target.expected.first().map(|(_, c)| summary(c)),
        drift: None,
        missing_sans: Vec::new(),
        health: None,
    };
    match outcome {
        Outcome::Silent { why, message } => {
            endpoint.detail = message;
            endpoint.fix = Some(silent_fix(target, why));
        }
        Outcome::Served {
            chain,
            impostor,
            handshake_error,
            health,
        } => {
            endpoint.health = health.map(|answer| health_of(target.service, answer));
            served(target, &mut endpoint, &chain, impostor, now);
            match handshake_error {
                Some(error) if target.identity.is_some() && !impostor => {
                    endpoint.detail.push_str(&format!(
                        "; the handshake then failed: {error} (a server that refuses the bundle's client identity does not trust the bundle's CA)"
                    ));
                }
                Some(error) if !impostor => {
                    endpoint
                        .detail
                        .push_str(&format!("; the handshake then failed: {error}"));
                }
                _ => {}
            }
        }
    }
    endpoint
}

/// The report of an endpoint the bundle gives no address for.
pub(super) fn gap(gap: Gap) -> Endpoint {
    Endpoint {
        endpoint: "(none)".to_owned(),
        fix: Some(format!(
            "the bundle does not say where {}'s {} listens: `cpgen verify` it against its config, and build it again with `cpgen bundle`",
            gap.host,
            gap.service.name()
        )),
        host: gap.host,
        service: gap.service,
        status: Status::Unreachable,
        detail: gap.why,
        served: None,
        expected: None,
        drift: None,
        missing_sans: Vec::new(),
        health: None,
    }
}

fn served(
    target: &Target,
    endpoint: &mut Endpoint,
    chain: &[Vec<u8>],
    impostor: bool,
    now: OffsetDateTime,
) {
    let Some(leaf) = chain.first().and_then(|der| CertInfo::parse(der).ok()) else {
        endpoint.status = Status::Foreign;
        endpoint.detail = "serves a certificate that does not parse".to_owned();
        endpoint.fix = Some(foreign_fix(target));
        return;
    };
    endpoint.served = Some(summary(&leaf));
    let dialled = target.address.san();
    if !leaf.covers(&dialled) {
        endpoint.missing_sans.push(dialled);
    }
    let exact = target.expected.iter().find(|(_, c)| c.der == leaf.der);
    // The bundle's certificate for the same key: a renewal keeps the key, so this is the one
    // the server would serve after a restart (behind a load balancer: which backend).
    let reference = exact
        .or_else(|| {
            target
                .expected
                .iter()
                .find(|(_, c)| c.public_key == leaf.public_key)
        })
        .or(target.expected.first());
    if let Some((_, reference)) = reference {
        endpoint.expected = Some(summary(reference));
    }
    // The bundle's own file may have been swapped: its certificate counts only when the
    // bundle's CA signed it.
    let from_ca = target.trust.iter().any(|ca| leaf.signed_by(ca));
    let exact = exact.filter(|_| from_ca);
    let validity = Validity::at(leaf.not_before, leaf.not_after, now);
    let out_of_date = matches!(validity, Validity::Expired | Validity::NotYetValid);
    endpoint.status = if impostor || (exact.is_none() && !from_ca) {
        Status::Foreign
    } else if out_of_date {
        Status::Expired
    } else if exact.is_some() {
        Status::Ok
    } else {
        Status::Drift
    };
    let serves = format!("serves {}", described(&leaf));
    endpoint.detail = match endpoint.status {
        Status::Foreign if impostor => format!(
            "{serves}, but its handshake is not signed by that certificate's key: it does not hold the key"
        ),
        Status::Foreign => format!("{serves}, not issued by this bundle's CA ({})", leaf.issuer),
        Status::Expired => format!("{serves}: {}", validity.words()),
        Status::Ok => format!("{serves}: the bundle's"),
        Status::Drift | Status::Unreachable => {
            let (age, words) = match reference {
                Some((_, bundle)) => age(&leaf, bundle),
                None => (Age::Older, "the bundle has none for it".to_owned()),
            };
            endpoint.drift = Some(age);
            format!("{serves}, from the bundle's CA but {words}")
        }
    };
    if !endpoint.missing_sans.is_empty() {
        endpoint.detail.push_str(&format!(
            "; its SANs do not name {}, the address dialled",
            endpoint.missing_sans.join(", ")
        ));
    }
    let backend = reference
        .filter(|(_, c)| c.public_key == leaf.public_key)
        .map(|(host, _)| host.as_str());
    endpoint.fix = fix(target, endpoint, backend);
}

/// Whether `served` is older or newer than `bundle`, and how, in words.
fn age(served: &CertInfo, bundle: &CertInfo) -> (Age, String) {
    let bundle_words = format!("the bundle has {}", described(bundle));
    if served.not_before < bundle.not_before {
        (Age::Older, format!("older: {bundle_words}"))
    } else if served.not_before > bundle.not_before {
        (Age::Newer, format!("newer than the bundle: {bundle_words}"))
    } else {
        (Age::Same, format!("not the bundle's: {bundle_words}"))
    }
}

fn described(cert: &CertInfo) -> String {
    format!(
        "serial {} (issued {}, expires {})",
        short_serial(&cert.serial()),
        date(cert.not_before),
        date(cert.not_after)
    )
}

/// The first 8 bytes of a serial: enough to tell two apart, short enough for a table.
fn short_serial(serial: &str) -> String {
    let bytes: Vec<&str> = serial.split(':').collect();
    if bytes.len() <= 8 {
        serial.to_owned()
    } else {
        format!("{}…", bytes[..8].join(":"))
    }
}

fn date(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn summary(cert: &CertInfo) -> CertSummary {
    CertSummary {
        serial: cert.serial(),
        subject: cert.subject.clone(),
        issuer: cert.issuer.clone(),
        not_before: cert.not_before,
        not_after: cert.not_after,
    }
}

fn health_of(service: Service, answer: HealthAnswer) -> Health {
    let path = service.health_path().unwrap_or_default().to_owned();
    match answer {
        HealthAnswer::Status(code) => Health {
            path,
            ok: (200..300).contains(&code),
            answer: format!("HTTP {code}"),
        },
        HealthAnswer::Failed(message) => Health {
            path,
            ok: false,
            answer: message,
        },
    }
}

/// What restarts the service `target` reaches (behind a load balancer, on `backend`).
fn restart(target: &Target, backend: Option<&str>) -> String {
    let (host, unit) = match target.service {
        Service::LoadBalancer | Service::ApiEndpoint => (
            backend.unwrap_or("each master"),
            Service::KubeApiserver.unit(),
        ),
        service => (target.host.as_str(), service.unit()),
    };
    format!("on {host}: install this bundle's files, then `systemctl restart {unit}`")
}

fn fix(target: &Target, endpoint: &Endpoint, backend: Option<&str>) -> Option<String> {
    let text = match (endpoint.status, endpoint.drift) {
        (Status::Ok, _) if !endpoint.missing_sans.is_empty() => format!(
            "the bundle's own certificate does not name {}: add it to the config (api.extra_sans), then `cpgen check`, `cpgen bundle` and deploy",
            endpoint.missing_sans.join(", ")
        ),
        (Status::Ok, _) => match endpoint.health.as_ref().filter(|h| !h.ok) {
            Some(health) => format!(
                "on {}: {} serves the bundle's certificate but its health request failed ({}): `journalctl -u {}` says why",
                target.host,
                target.service.unit(),
                health.answer,
                target.service.unit()
            ),
            None => return None,
        },
        (Status::Drift, Some(Age::Newer)) => "it runs a newer certificate than this bundle: probe the bundle that was deployed last, or deploy this one on purpose".to_owned(),
        (Status::Drift, _) => restart(target, backend),
        (Status::Expired, _) if endpoint.expected.as_ref().map(|e| &e.serial) == endpoint.served.as_ref().map(|s| &s.serial) => {
            format!(
                "the bundle's certificate itself is out of date: `cpgen renew CLUSTER.toml`, `cpgen bundle`, then {}",
                restart(target, backend)
            )
        }
        (Status::Expired, _) => restart(target, backend),
        (Status::Foreign, _) => foreign_fix(target),
        (Status::Unreachable, _) => silent_fix(target, Silence::Failed),
    };
    Some(text)
}

fn foreign_fix(target: &Target) -> String {
    format!(
        "what answers at {}:{} is not this cluster's {}: on {}, find the process on the port (`ss -ltnp 'sport = :{}'`) and run {} with this bundle's files",
        target.address,
        target.port,
        target.service.name(),
        target.host,
        target.port,
        target.service.unit()
    )
}

fn silent_fix(target: &Target, why: Silence) -> String {
    let unit = target.service.unit();
    let host = &target.host;
    match why {
        Silence::NoAddress => format!(
            "{} must resolve, on every client, to the load balancer (or its virtual IP): add the DNS record",
            target.address
        ),
        Silence::Refused => format!(
            "on {host}: `systemctl start {unit}` (`journalctl -u {unit}` says why it stopped)"
        ),
        Silence::TimedOut => format!(
            "check that {host} is up, that port {} is open to this machine, and that {unit} answers TLS there",
            target.port
        ),
        Silence::NoTls => format!(
            "what listens at {}:{} does not speak TLS (or hung up): on {host}, `ss -ltnp 'sport = :{}'` names it; {unit} should be listening there",
            target.address, target.port, target.port
        ),
        Silence::Failed => format!("on {host}: check {unit} (`systemctl status {unit}`)"),
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use time::Duration;

    use super::*;
    use crate::probe::dial::Address;

    /// A CA, and a way to issue it leaves for 127.0.0.1 valid from `from` for `days`.
    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        cert: CertInfo,
    }

    impl Ca {
        fn new(name: &str) -> Ca {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let cert = params.self_signed(&key).unwrap();
            Ca {
                cert: CertInfo::parse(cert.der()).unwrap(),
                issuer: Issuer::new(params, key),
            }
        }

        fn leaf(&self, key: &KeyPair, san: &str, from: OffsetDateTime, days: i64) -> CertInfo {
            let mut params = CertificateParams::new(vec![san.to_owned()]).unwrap();
            params.not_before = from;
            params.not_after = from + Duration::days(days);
            let cert = params.signed_by(key, &self.issuer).unwrap();
            CertInfo::parse(cert.der()).unwrap()
        }
    }

    fn target(expected: &CertInfo, trust: &CertInfo) -> Target {
        Target {
            host: "m0".to_owned(),
            service: Service::EtcdClient,
            address: Address::Ip("127.0.0.1".parse().unwrap()),
            port: 2379,
            expected: vec![("m0".to_owned(), expected.clone())],
            trust: vec![trust.clone()],
            identity: None,
        }
    }

    fn served(cert: &CertInfo, impostor: bool) -> Outcome {
        Outcome::Served {
            chain: vec![cert.der.clone()],
            impostor,
            handshake_error: None,
            health: Some(HealthAnswer::Status(200)),
        }
    }

    #[test]
    fn each_status_from_what_is_served() {
        let now = OffsetDateTime::now_utc();
        let ca = Ca::new("bundle-ca");
        let key = KeyPair::generate().unwrap();
        let bundle = ca.leaf(&key, "127.0.0.1", now - Duration::days(1), 30);
        let target = target(&bundle, &ca.cert);
        let judged = |cert: &CertInfo, impostor: bool| judge(&target, served(cert, impostor), now);

        let exact = judged(&bundle, false);
        assert_eq!((exact.status, exact.is_ok()), (Status::Ok, true));
        assert_eq!(exact.fix, None);

        let older = ca.leaf(&key, "127.0.0.1", now - Duration::days(10), 30);
        let newer = ca.leaf(&key, "127.0.0.1", now - Duration::hours(1), 30);
        for (cert, age) in [(&older, Age::Older), (&newer, Age::Newer)] {
            let drift = judged(cert, false);
            assert_eq!((drift.status, drift.drift), (Status::Drift, Some(age)));
        }
        assert!(judged(&older, false)
            .fix
            .unwrap()
            .contains("on m0: install this bundle's files, then `systemctl restart etcd.service`"));

        let expired = ca.leaf(&key, "127.0.0.1", now - Duration::days(40), 30);
        let early = ca.leaf(&key, "127.0.0.1", now + Duration::days(1), 30);
        for cert in [&expired, &early] {
            assert_eq!(judged(cert, false).status, Status::Expired);
        }

        let other = Ca::new("bundle-ca");
        let foreign = other.leaf(&key, "127.0.0.1", now - Duration::days(1), 30);
        assert_eq!(judged(&foreign, false).status, Status::Foreign);
        // The bundle's very certificate, served by a handshake its key did not sign.
        let impostor = judged(&bundle, true);
        assert_eq!(impostor.status, Status::Foreign);
        assert!(impostor.detail.contains("does not hold the key"));

        // Another host's certificate from the same CA: drift, and it does not name the
        // address dialled.
        let elsewhere = ca.leaf(&key, "127.0.0.2", now - Duration::days(1), 30);
        let wrong_host = judged(&elsewhere, false);
        assert_eq!(wrong_host.status, Status::Drift);
        assert_eq!(wrong_host.missing_sans, ["127.0.0.1"]);
        assert!(!wrong_host.is_ok());
    }

    #[test]
    fn the_bundles_own_file_swapped_for_another_cas_certificate_is_foreign() {
        let now = OffsetDateTime::now_utc();
        let ca = Ca::new("bundle-ca");
        let rogue = Ca::new("rogue");
        let key = KeyPair::generate().unwrap();
        let planted = rogue.leaf(&key, "127.0.0.1", now - Duration::days(1), 30);
        let target = target(&planted, &ca.cert);
        let judged = judge(&target, served(&planted, false), now);
        assert_eq!(judged.status, Status::Foreign);
    }

    #[test]
    fn a_failed_health_request_or_silence_is_not_ok() {
        let now = OffsetDateTime::now_utc();
        let ca = Ca::new("bundle-ca");
        let key = KeyPair::generate().unwrap();
        let bundle = ca.leaf(&key, "127.0.0.1", now - Duration::days(1), 30);
        let target = target(&bundle, &ca.cert);
        let unhealthy = judge(
            &target,
            Outcome::Served {
                chain: vec![bundle.der.clone()],
                impostor: false,
                handshake_error: None,
                health: Some(HealthAnswer::Status(503)),
            },
            now,
        );
        assert_eq!(unhealthy.status, Status::Ok);
        assert!(!unhealthy.is_ok());
        assert!(unhealthy
            .fix
            .unwrap()
            .contains("health request failed (HTTP 503)"));
        let silent = judge(
            &target,
            Outcome::Silent {
                why: Silence::Refused,
                message: "connection refused: nothing listens".to_owned(),
            },
            now,
        );
        assert_eq!(silent.status, Status::Unreachable);
        assert!(silent
            .fix
            .unwrap()
            .contains("`systemctl start etcd.service`"));
    }
}
