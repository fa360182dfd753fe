//! What an operator must hear about certificate lifetimes before rolling a bundle out: a CA
//! that ends soon, or before the leaves it signs would, and a renewal time that makes
//! certificates that are not valid yet or already expired.

use time::{Duration, OffsetDateTime};

use super::issue::Authority;
use super::secrets::Secrets;
use crate::plan::Plan;
use crate::Error;

/// A certificate that expires sooner than this is worth a warning: verify's CP807, `certs`'
/// `expires soon`, and a CA at import and at bundle time.
pub const EXPIRES_SOON: Duration = Duration::days(30);

/// How far ahead of now a renewal may be dated without saying it is meant: clocks differ
/// by minutes, not by days.
const RENEWAL_AHEAD: Duration = Duration::days(1);

/// Something about a CA's lifetime that changes what the bundle's certificates are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaNotice {
    /// The CA expires within [`EXPIRES_SOON`] of now (or has expired).
    ExpiresSoon {
        /// `kubernetes`, `etcd` or `front-proxy`.
        ca: &'static str,
        /// Its NotAfter.
        not_after: OffsetDateTime,
    },
    /// The CA has expired: nothing it signed is valid.
    Expired {
        /// `kubernetes`, `etcd` or `front-proxy`.
        ca: &'static str,
        /// Its NotAfter.
        not_after: OffsetDateTime,
    },
    /// The CA ends before its leaves would: they are cut to end with it.
    CutsLeaves {
        /// `kubernetes`, `etcd` or `front-proxy`.
        ca: &'static str,
        /// Its NotAfter, which is also the leaves'.
        not_after: OffsetDateTime,
        /// How many days the leaves are valid instead of the configured validity.
        days: i64,
        /// `pki.cert_validity_days`.
        configured: u32,
    },
}

impl std::fmt::Display for CaNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaNotice::ExpiresSoon { ca, not_after } => write!(
                f,
                "the {ca} CA expires on {}: every certificate it signs stops working then; replace the CA before that (a new CA must reach every node; a staged rotation keeps the cluster running)",
                date(*not_after)
            ),
            CaNotice::Expired { ca, not_after } => write!(
                f,
                "the {ca} CA expired on {}: nothing it signed is trusted any more; it must be replaced, and the new CA must reach every node",
                date(*not_after)
            ),
            CaNotice::CutsLeaves {
                ca,
                not_after,
                days,
                configured,
            } => write!(
                f,
                "the {ca} CA expires on {}, so the certificates it signs are valid for {days} days instead of pki.cert_validity_days = {configured}",
                date(*not_after)
            ),
        }
    }
}

fn date(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.format(&format).unwrap_or_else(|_| t.to_string())
}

/// Every [`CaNotice`] for the CAs of `plan` at `now`.
pub fn ca_notices(
    plan: &Plan,
    secrets: &Secrets,
    now: OffsetDateTime,
) -> Result<Vec<CaNotice>, Error> {
    let configured = plan.pki.cert_validity.days();
    let leaves_end = secrets.issued_at() + Duration::days(i64::from(configured));
    let mut notices = Vec::new();
    for (ca, not_after) in Authority::new(plan, secrets)?.ca_expiries() {
        let ca = ca.name();
        if not_after <= now {
            notices.push(CaNotice::Expired { ca, not_after });
        } else if not_after - now < EXPIRES_SOON {
            notices.push(CaNotice::ExpiresSoon { ca, not_after });
        }
        if not_after < leaves_end {
            notices.push(CaNotice::CutsLeaves {
                ca,
                not_after,
                days: (not_after - secrets.issued_at()).whole_days(),
                configured,
            });
        }
    }
    Ok(notices)
}

/// What is wrong with renewing at `at`, when it is `now` and leaves are valid for
/// `validity_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenewalTime {
    /// More than a day ahead: the certificates would not be valid until then.
    Future {
        /// How far ahead.
        ahead: Duration,
    },
    /// So far back that the certificates would already have expired.
    Expired {
        /// When they would have expired.
        expired_at: OffsetDateTime,
    },
}

/// `None` when `at` is a sensible renewal time; otherwise what is wrong with it.
pub fn renewal_time(
    at: OffsetDateTime,
    now: OffsetDateTime,
    validity_days: u32,
) -> Option<RenewalTime> {
    // Near the end of time the sum does not exist; such a time is far ahead anyway.
    let Some(expired_at) = at.checked_add(Duration::days(i64::from(validity_days))) else {
        return Some(RenewalTime::Future { ahead: at - now });
    };
    if at - now > RENEWAL_AHEAD {
        Some(RenewalTime::Future { ahead: at - now })
    } else if expired_at <= now {
        Some(RenewalTime::Expired { expired_at })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn renewal_times_are_bounded_both_ways() {
        let now = datetime!(2026-06-01 00:00:00 UTC);
        assert_eq!(renewal_time(now, now, 365), None);
        assert_eq!(renewal_time(now + Duration::hours(23), now, 365), None);
        assert_eq!(renewal_time(now - Duration::days(364), now, 365), None);
        assert_eq!(
            renewal_time(now + Duration::days(300), now, 365),
            Some(RenewalTime::Future {
                ahead: Duration::days(300)
            })
        );
        assert_eq!(
            renewal_time(now - Duration::days(365), now, 365),
            Some(RenewalTime::Expired { expired_at: now })
        );
    }
}
