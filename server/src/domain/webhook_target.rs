//! Where a destination's webhook may point (docs/operations.md): an `http://` or
//! `https://` URL to a public host, without userinfo. The same address rule
//! is applied again when connecting, to every address a name resolves to,
//! so that a name cannot be pointed at the service's own network later
//! (see `notify::webhooks`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Which private targets are allowed (`ALLOW_PRIVATE_WEBHOOKS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetPolicy {
    /// Public hosts only (the default).
    #[default]
    PublicOnly,
    /// Private, loopback and link-local hosts too (local development, a CRM
    /// on a private network). Cloud metadata endpoints stay refused.
    AllowPrivate,
}

/// Host names that are never a webhook receiver: the machine itself and
/// cloud metadata services, whatever they resolve to.
const REFUSED_NAMES: &[&str] = &["localhost", "metadata", "metadata.google.internal"];

/// Cloud metadata addresses: refused even with [`TargetPolicy::AllowPrivate`].
const METADATA_ADDRESSES: &[IpAddr] = &[
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Parses and checks a webhook URL; the error says why, without echoing
/// more than a little of the input.
pub(crate) fn parse_webhook_url(raw: &str, policy: TargetPolicy) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    match url.host() {
        None => Err("must name a host".into()),
        // The URL parser already turned decimal, hex and octal forms
        // (`2130706433`, `0x7f.1`) into addresses.
        Some(Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), policy),
        Some(Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), policy),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let refused = REFUSED_NAMES.contains(&name.as_str()) || name.ends_with(".localhost");
            if refused && !(policy == TargetPolicy::AllowPrivate && is_loopback_name(&name)) {
                Err("must be a public host".into())
            } else {
                Ok(())
            }
        }
    }?;
    Ok(url)
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether a webhook may be delivered to `ip` under `policy`.
pub(crate) fn address_allowed(ip: IpAddr, policy: TargetPolicy) -> bool {
    check_address(ip, policy).is_ok()
}

fn check_address(ip: IpAddr, policy: TargetPolicy) -> Result<(), String> {
    let ip = canonical(ip);
    if METADATA_ADDRESSES.contains(&ip) {
        return Err("must not be a cloud metadata address".into());
    }
    if ip.is_unspecified() || ip.is_multicast() || is_broadcast(ip) {
        return Err("must be a unicast address".into());
    }
    if policy == TargetPolicy::AllowPrivate || is_public(ip) {
        Ok(())
    } else {
        Err("must be a public host (set ALLOW_PRIVATE_WEBHOOKS=true for private ones)".into())
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`, NAT64
/// `64:ff9b::7f00:1`) is judged as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            ip
        }
        IpAddr::V4(_) => ip,
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_documentation()
                || a == 0
                // Shared address space (carrier-grade NAT), 100.64/10.
                || (a == 100 && (64..128).contains(&b))
                // IETF protocol assignments, 192.0.0/24.
                || (a == 192 && b == 0 && c == 0)
                // Benchmarking, 198.18/15.
                || (a == 198 && (b == 18 || b == 19))
                // Reserved, 240/4.
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                // Unique local, fc00::/7.
                || (first & 0xfe00) == 0xfc00
                // Link-local, fe80::/10.
                || (first & 0xffc0) == 0xfe80
                // Documentation, 2001:db8::/32.
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_hosts_are_accepted() {
        for url in [
            "https://crm.example.com/hooks/calls",
            "http://93.184.216.34/hook",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
            "https://hooks.example.com:8443/a?b=c",
        ] {
            assert!(
                parse_webhook_url(url, TargetPolicy::PublicOnly).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn private_loopback_metadata_and_tricks_are_refused() {
        for url in [
            "http://127.0.0.1:6379/",
            "http://localhost/hook",
            "http://api.localhost/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://017700000001/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://[fc00::1]/",
            "https://user:pass@crm.example.com/",
            "https://user@crm.example.com/",
            "ftp://crm.example.com/",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(
                parse_webhook_url(url, TargetPolicy::PublicOnly).is_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn allowing_private_targets_still_refuses_metadata_and_userinfo() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://localhost:9000/",
            "http://10.1.2.3/crm",
            "http://[::1]:9000/",
        ] {
            assert!(
                parse_webhook_url(url, TargetPolicy::AllowPrivate).is_ok(),
                "{url}"
            );
        }
        for url in [
            "http://169.254.169.254/",
            "http://metadata.google.internal/",
            "http://0.0.0.0/",
            "http://user:pw@10.1.2.3/",
        ] {
            assert!(
                parse_webhook_url(url, TargetPolicy::AllowPrivate).is_err(),
                "{url}"
            );
        }
    }

    #[test]
    fn the_error_never_echoes_the_input() {
        let secretish = "https://user:s3cr3t@crm.example.com/";
        let message = parse_webhook_url(secretish, TargetPolicy::PublicOnly).unwrap_err();
        assert!(!message.contains("s3cr3t"), "{message}");
    }
}
