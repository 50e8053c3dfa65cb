//! SSRF rules for webhook target URLs.
//!
//! Webhooks go to URLs that API users type in. Without these rules a tenant could make Refwire
//! call into its own network: cloud metadata (169.254.169.254), databases, admin ports.
//!
//! The rules run twice:
//! - [`check_target_url`] when a webhook is created or changed: syntax, scheme, hostname and
//!   literal-IP checks, so that bad targets are refused with a clear message up front;
//! - [`check_resolved_address`] at send time, on every address DNS returned for the host,
//!   because a public name can point at a private address, or be re-pointed after creation.
//!
//! The sender must connect to an address it vetted (never look the name up a second time, which
//! is what DNS rebinding exploits) and must never follow redirects, which would skip both checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// Longest accepted webhook URL, in bytes; longer ones are abuse or mistakes, never real hooks.
const MAX_URL_LEN: usize = 2048;

/// Names that only mean something inside a network (RFC 6761 `localhost`, RFC 6762 `local`,
/// RFC 8375 `home.arpa`, and the de facto private `internal` and `lan`). Each blocks itself and
/// every name below it.
const INTERNAL_NAME_SUFFIXES: [&str; 5] = ["localhost", "local", "internal", "lan", "home.arpa"];

/// IPv4 blocks that are not reachable on the public internet (IANA special-purpose registry),
/// whole blocks even where IANA marks a few single addresses global: none of them serves webhooks.
const NON_GLOBAL_V4: [Ipv4Net; 15] = [
    Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8), // "this network"
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8), // private
    Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10), // carrier-grade NAT
    Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, cloud metadata
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12), // private
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24), // documentation TEST-NET-1
    Ipv4Net::new_assert(Ipv4Addr::new(192, 88, 99, 0), 24), // deprecated 6to4 relay anycast
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16), // private
    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24), // documentation TEST-NET-2
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24), // documentation TEST-NET-3
    Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    Ipv4Net::new_assert(Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, incl. 255.255.255.255 broadcast
];

/// The only IPv6 space allocated for global unicast (IANA IPv6 address space registry). Everything
/// outside it is loopback, unspecified, IPv4-compatible, discard, unique-local, link-local,
/// site-local, multicast or unallocated, so IPv6 is checked against this allow-list.
const GLOBAL_UNICAST_V6: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Non-global blocks inside [`GLOBAL_UNICAST_V6`].
const NON_GLOBAL_V6_IN_GLOBAL_UNICAST: [Ipv6Net; 4] = [
    // IETF protocol assignments: Teredo 2001::/32 (embeds an obfuscated IPv4), benchmarking, ORCHID.
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    // Documentation.
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    // 6to4 (deprecated), which embeds an IPv4 address that may be private.
    Ipv6Net::new_assert(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16),
    // Documentation (RFC 9637).
    Ipv6Net::new_assert(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
];

/// NAT64 well-known prefix (RFC 6052): a gateway translates `64:ff9b::a.b.c.d` to exactly
/// `a.b.c.d`, so such an address is as global as the IPv4 address it embeds. DNS64 resolvers in
/// IPv6-only networks (for example AWS IPv6-only subnets) hand these out for IPv4-only hosts.
/// The local-use prefix 64:ff9b:1::/48 is outside 2000::/3 and so always refused.
const NAT64_WELL_KNOWN_V6: Ipv6Net =
    Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);

/// Which targets are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Production: https to public hosts only.
    Strict,
    /// Local dev server only, behind an explicit flag: also accepts http and https to
    /// 127.0.0.0/8, `::1` and `localhost`, so hooks can reach a receiver on the developer's
    /// machine. Nothing else is relaxed.
    AllowLoopbackHttp,
}

/// Why a webhook target was refused, phrased for the API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRuleError {
    #[error("URL is {len} bytes long; at most {max} are allowed", max = MAX_URL_LEN)]
    TooLong { len: usize },
    #[error("not a valid absolute URL: {0}")]
    InvalidUrl(url::ParseError),
    #[error("scheme `{0}` is not allowed; webhook URLs must use https")]
    SchemeNotAllowed(String),
    #[error("webhook URLs must not contain a user name or password")]
    UserInfoNotAllowed,
    /// The parser guarantees a host for http(s); this keeps a missing one an error, not a panic.
    #[error("webhook URL has no host")]
    MissingHost,
    #[error("host `{0}` is a local or internal name, not reachable from the internet")]
    InternalHostname(String),
    #[error("host `{0}` is a single label; use a fully qualified domain name")]
    SingleLabelHost(String),
    #[error("address {0} is not a public internet address")]
    NonGlobalAddress(IpAddr),
}

/// Checks a webhook URL when it is created or changed, and returns it parsed and normalised
/// (lower-case host, integer/hex/octal IPv4 spellings rewritten as dotted quads, fragment
/// dropped because it is never sent). A name that passes must still be checked at send time on
/// each resolved address with [`check_resolved_address`].
pub fn check_target_url(raw: &str, policy: TargetPolicy) -> Result<Url, UrlRuleError> {
    check_length(raw.len())?;
    let mut url = Url::parse(raw).map_err(UrlRuleError::InvalidUrl)?;
    url.set_fragment(None);
    check_length(url.as_str().len())?;

    if !matches!(url.scheme(), "https" | "http") {
        return Err(UrlRuleError::SchemeNotAllowed(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRuleError::UserInfoNotAllowed);
    }
    let host = url.host().ok_or(UrlRuleError::MissingHost)?;
    if policy == TargetPolicy::AllowLoopbackHttp && is_loopback_host(&host) {
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err(UrlRuleError::SchemeNotAllowed(url.scheme().to_owned()));
    }
    match host {
        Host::Domain(name) => check_public_name(name)?,
        Host::Ipv4(addr) => check_resolved_address(addr.into(), TargetPolicy::Strict)?,
        Host::Ipv6(addr) => check_resolved_address(addr.into(), TargetPolicy::Strict)?,
    }
    Ok(url)
}

/// Checks one address the target's name resolved to, just before connecting to it. The sender
/// must refuse the send if any resolved address fails, then connect to a vetted address.
pub fn check_resolved_address(addr: IpAddr, policy: TargetPolicy) -> Result<(), UrlRuleError> {
    let loopback_allowed = policy == TargetPolicy::AllowLoopbackHttp && addr.is_loopback();
    if loopback_allowed || is_global_address(addr) {
        Ok(())
    } else {
        Err(UrlRuleError::NonGlobalAddress(addr))
    }
}

/// Whether `addr` is reachable on the public internet. Stable std has no `is_global`, and the
/// crates that offer one count multicast and IPv4-mapped loopback as global, so this is a range
/// table. IPv4-mapped and NAT64 addresses are judged by the IPv4 address they carry.
pub fn is_global_address(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Some(v4) => is_global_v4(v4),
            None => {
                GLOBAL_UNICAST_V6.contains(&v6)
                    && !NON_GLOBAL_V6_IN_GLOBAL_UNICAST
                        .iter()
                        .any(|net| net.contains(&v6))
            }
        },
    }
}

fn is_global_v4(addr: Ipv4Addr) -> bool {
    !NON_GLOBAL_V4.iter().any(|net| net.contains(&addr))
}

/// The IPv4 address an IPv6 address stands for when connecting to it: `::ffff:a.b.c.d` is
/// `a.b.c.d` on a dual-stack socket, and `64:ff9b::a.b.c.d` is `a.b.c.d` through NAT64.
fn embedded_ipv4(addr: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = addr.to_ipv4_mapped() {
        return Some(v4);
    }
    let [.., a, b, c, d] = addr.octets();
    NAT64_WELL_KNOWN_V6
        .contains(&addr)
        .then_some(Ipv4Addr::new(a, b, c, d))
}

fn check_length(len: usize) -> Result<(), UrlRuleError> {
    if len > MAX_URL_LEN {
        return Err(UrlRuleError::TooLong { len });
    }
    Ok(())
}

/// Loopback as the dev policy means it: 127.0.0.0/8, `::1` and `localhost` (not `*.localhost`,
/// not IPv4-mapped loopback).
fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => canonical_name(name) == "localhost",
        Host::Ipv4(addr) => addr.is_loopback(),
        Host::Ipv6(addr) => addr.is_loopback(),
    }
}

/// Refuses names that can only resolve inside a network. The parser has already turned every
/// numeric spelling of an IPv4 address into [`Host::Ipv4`], so `name` is a real domain name.
fn check_public_name(name: &str) -> Result<(), UrlRuleError> {
    let canonical = canonical_name(name);
    let is_internal = INTERNAL_NAME_SUFFIXES.iter().any(|suffix| {
        canonical == *suffix
            || canonical
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.'))
    });
    if is_internal {
        return Err(UrlRuleError::InternalHostname(name.to_owned()));
    }
    // A single label is resolved through the machine's search domains, i.e. inside its network.
    if !canonical.contains('.') {
        return Err(UrlRuleError::SingleLabelHost(name.to_owned()));
    }
    Ok(())
}

/// The name as DNS compares it: lower case, without the trailing root dot(s) of a fully
/// qualified spelling such as `localhost.`.
fn canonical_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetPolicy::{AllowLoopbackHttp as Dev, Strict};

    #[test]
    fn target_url_table() {
        let rows: &[(&str, TargetPolicy, bool)] = &[
            // Accepted public targets.
            ("https://example.com/hook", Strict, true),
            ("https://api.example.com:8443/x?y=1", Strict, true),
            ("https://example.com:65535/", Strict, true),
            ("https://EXAMPLE.com/Hook", Strict, true),
            ("https://example.com/hook#fragment", Strict, true),
            ("https://hooks.slack.com/services/T/B/C", Strict, true),
            ("https://example.com./", Strict, true),
            ("https://xn--bcher-kva.example/", Strict, true),
            ("https://bücher.example/", Strict, true),
            ("https://8.8.8.8/", Strict, true),
            ("https://[2606:4700:4700::1111]/", Strict, true),
            ("https://[::ffff:8.8.8.8]/", Strict, true),
            ("https://[64:ff9b::808:808]/", Strict, true),
            ("https://11.0.0.1/", Strict, true),
            ("https://100.128.0.0/", Strict, true),
            ("https://172.15.255.255/", Strict, true),
            ("https://172.32.0.0/", Strict, true),
            ("https://198.20.0.0/", Strict, true),
            ("https://notlocal.example/", Strict, true),
            ("https://local.example.com/", Strict, true),
            // Schemes.
            ("http://example.com/hook", Strict, false),
            ("ftp://example.com/hook", Strict, false),
            ("file:///etc/passwd", Strict, false),
            ("javascript:alert(1)", Strict, false),
            ("gopher://example.com/", Strict, false),
            ("data:text/plain,hello", Strict, false),
            ("ws://example.com/", Strict, false),
            ("example.com/hook", Strict, false),
            ("//example.com/hook", Strict, false),
            ("", Strict, false),
            // User info.
            ("https://user@example.com/", Strict, false),
            ("https://user:pass@example.com/", Strict, false),
            ("https://:pass@example.com/", Strict, false),
            // Localhost in all its spellings.
            ("https://localhost/", Strict, false),
            ("https://LOCALHOST/", Strict, false),
            ("https://localhost./", Strict, false),
            ("https://localhost../", Strict, false),
            ("https://foo.localhost/", Strict, false),
            ("https://%6c%6fcalhost/", Strict, false),
            ("https://ｌｏｃａｌｈｏｓｔ/", Strict, false),
            ("https://127.0.0.1/", Strict, false),
            ("https://127.1/", Strict, false),
            ("https://0x7f.0.0.1/", Strict, false),
            ("https://0x7f.1/", Strict, false),
            ("https://0177.0.0.1/", Strict, false),
            ("https://2130706433/", Strict, false),
            ("https://0x7f000001/", Strict, false),
            ("https://0/", Strict, false),
            ("https://0.0.0.0/", Strict, false),
            ("https://[::1]/", Strict, false),
            ("https://[0:0:0:0:0:0:0:1]/", Strict, false),
            ("https://[::ffff:127.0.0.1]/", Strict, false),
            ("https://[::ffff:7f00:1]/", Strict, false),
            // Internal names.
            ("https://printer.local/", Strict, false),
            ("https://PRINTER.LOCAL./", Strict, false),
            ("https://db.internal/", Strict, false),
            ("https://metadata.google.internal/", Strict, false),
            ("https://DB.Internal./", Strict, false),
            ("https://nas.lan/", Strict, false),
            ("https://NAS.LAN./", Strict, false),
            ("https://router.home.arpa/", Strict, false),
            ("https://home.arpa/", Strict, false),
            ("https://Router.HOME.ARPA./", Strict, false),
            // Single-label names.
            ("https://intranet/", Strict, false),
            ("https://intranet./", Strict, false),
            ("https://com/", Strict, false),
            // Non-global IPv4, first and last addresses of the blocks.
            ("https://0.1.2.3/", Strict, false),
            ("https://10.0.0.0/", Strict, false),
            ("https://10.255.255.255/", Strict, false),
            ("https://100.64.0.0/", Strict, false),
            ("https://100.127.255.255/", Strict, false),
            ("https://127.255.255.255/", Strict, false),
            ("https://169.254.0.0/", Strict, false),
            ("https://169.254.169.254/latest/meta-data/", Strict, false),
            ("https://172.16.0.0/", Strict, false),
            ("https://172.31.255.255/", Strict, false),
            ("https://192.0.0.8/", Strict, false),
            ("https://192.0.2.1/", Strict, false),
            ("https://192.88.99.1/", Strict, false),
            ("https://192.168.0.0/", Strict, false),
            ("https://192.168.255.255/", Strict, false),
            ("https://198.18.0.0/", Strict, false),
            ("https://198.19.255.255/", Strict, false),
            ("https://198.51.100.7/", Strict, false),
            ("https://203.0.113.255/", Strict, false),
            ("https://224.0.0.1/", Strict, false),
            ("https://239.255.255.255/", Strict, false),
            ("https://240.0.0.1/", Strict, false),
            ("https://255.255.255.255/", Strict, false),
            // Non-global IPv6.
            ("https://[::]/", Strict, false),
            ("https://[fc00::1]/", Strict, false),
            ("https://[fd12::1]/", Strict, false),
            ("https://[fe80::1]/", Strict, false),
            ("https://[fe80::1%25eth0]/", Strict, false),
            ("https://[fec0::1]/", Strict, false),
            ("https://[ff02::1]/", Strict, false),
            ("https://[ff0e::1]/", Strict, false),
            ("https://[2001:db8::1]/", Strict, false),
            ("https://[3fff::1]/", Strict, false),
            ("https://[2001::1]/", Strict, false),
            ("https://[100::1]/", Strict, false),
            ("https://[64:ff9b::7f00:1]/", Strict, false),
            ("https://[64:ff9b::a9fe:a9fe]/", Strict, false),
            ("https://[64:ff9b:1::a00:1]/", Strict, false),
            ("https://[2002:7f00:1::1]/", Strict, false),
            ("https://[2002:808:808::1]/", Strict, false),
            ("https://[::127.0.0.1]/", Strict, false),
            ("https://[::8.8.8.8]/", Strict, false),
            ("https://[::ffff:10.0.0.1]/", Strict, false),
            // The dev server's loopback flag: loopback over http or https, nothing else extra.
            ("http://127.0.0.1:8080/", Dev, true),
            ("http://127.1/", Dev, true),
            ("http://localhost:3000/", Dev, true),
            ("http://LOCALHOST./hook", Dev, true),
            ("http://[::1]:8080/", Dev, true),
            ("https://127.0.0.1/", Dev, true),
            ("https://localhost/", Dev, true),
            ("https://example.com/", Dev, true),
            ("http://example.com/", Dev, false),
            ("http://10.0.0.1/", Dev, false),
            ("https://10.0.0.1/", Dev, false),
            ("http://foo.localhost/", Dev, false),
            ("https://foo.localhost/", Dev, false),
            ("https://[::ffff:127.0.0.1]/", Dev, false),
            ("http://0.0.0.0/", Dev, false),
            ("http://[::ffff:127.0.0.1]/", Dev, false),
            ("http://user@localhost/", Dev, false),
            ("ftp://127.0.0.1/", Dev, false),
            ("http://printer.local/", Dev, false),
        ];

        let failures: Vec<String> = rows
            .iter()
            .filter_map(|&(raw, policy, accepted)| {
                let outcome = check_target_url(raw, policy);
                (outcome.is_ok() != accepted).then(|| {
                    format!(
                        "{raw:?} under {policy:?}: expected accepted={accepted}, got {outcome:?}"
                    )
                })
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} rows failed:\n{}",
            failures.len(),
            rows.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn resolved_address_table() {
        let rows: &[(&str, TargetPolicy, bool)] = &[
            ("93.184.216.34", Strict, true),
            ("2606:2800:220:1:248:1893:25c8:1946", Strict, true),
            ("64:ff9b::5db8:d822", Strict, true),
            ("10.1.2.3", Strict, false),
            ("169.254.169.254", Strict, false),
            ("::ffff:10.0.0.1", Strict, false),
            ("fd00:ec2::254", Strict, false),
            ("127.0.0.1", Strict, false),
            ("::1", Strict, false),
            ("127.0.0.1", Dev, true),
            ("127.8.9.10", Dev, true),
            ("::1", Dev, true),
            ("::ffff:127.0.0.1", Dev, false),
            ("10.1.2.3", Dev, false),
            ("0.0.0.0", Dev, false),
        ];

        let failures: Vec<String> = rows
            .iter()
            .filter_map(|&(text, policy, accepted)| {
                let addr: IpAddr = text.parse().expect("test rows hold valid addresses");
                let outcome = check_resolved_address(addr, policy);
                (outcome.is_ok() != accepted).then(|| {
                    format!(
                        "{text} under {policy:?}: expected accepted={accepted}, got {outcome:?}"
                    )
                })
            })
            .collect();
        assert!(failures.is_empty(), "rows failed:\n{}", failures.join("\n"));
    }

    #[test]
    fn errors_name_the_rule_that_failed() {
        let too_long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            check_target_url(&too_long, Strict),
            Err(UrlRuleError::TooLong {
                len: too_long.len()
            })
        );
        assert_eq!(
            check_target_url("http://example.com/", Strict),
            Err(UrlRuleError::SchemeNotAllowed("http".to_owned()))
        );
        assert_eq!(
            check_target_url("https://u:p@example.com/", Strict),
            Err(UrlRuleError::UserInfoNotAllowed)
        );
        assert_eq!(
            check_target_url("https://db.internal./", Strict),
            Err(UrlRuleError::InternalHostname("db.internal.".to_owned()))
        );
        assert_eq!(
            check_target_url("https://intranet/", Strict),
            Err(UrlRuleError::SingleLabelHost("intranet".to_owned()))
        );
        assert_eq!(
            check_target_url("https://0x7f.1/", Strict),
            Err(UrlRuleError::NonGlobalAddress(Ipv4Addr::LOCALHOST.into()))
        );
        assert!(matches!(
            check_target_url("example.com/hook", Strict),
            Err(UrlRuleError::InvalidUrl(_))
        ));
    }

    #[test]
    fn accepted_url_is_normalised_without_fragment() {
        let url = check_target_url("https://API.Example.com:8443/x?y=1#top", Strict)
            .expect("a public https URL is accepted");
        assert_eq!(url.as_str(), "https://api.example.com:8443/x?y=1");
    }
}
