//! The one guard against server-side request forgery, shared by everything
//! the server fetches or sends on a client's behalf: `href` inputs and
//! modules deployed by reference (`href.allowed_hosts`), and callbacks to
//! `subscriber` URIs (`callbacks.allowed_hosts`).
//!
//! What may be reached: http and https URLs whose host is public, or whose
//! host is in the setting's allow-list. An empty list means "any public
//! host"; a non-empty one means "only these hosts", loopback and private
//! ones included, deliberately (that is how tests and intranets opt in).
//!
//! Mechanism, and why the check sits where it does:
//! - [`AddressGuard::check_url`] checks what the URL alone says: scheme,
//!   host, allow-list, and IP literals. It never resolves a name.
//! - Names are resolved and checked by the guard acting as the HTTP
//!   client's DNS resolver ([`reqwest::dns::Resolve`]): it resolves once,
//!   refuses the name when any address is non-public (unless the name is
//!   allow-listed), and hands the client exactly the addresses it checked.
//!   The check and the connection therefore share one resolution: a name
//!   that answers a public address to a check and a private one a moment
//!   later (DNS rebinding) cannot slip through, because there is no later
//!   resolution to rebind.
//! - IP literals never reach a resolver (hyper connects to them directly),
//!   which is why [`AddressGuard::check_url`] checks them itself.
//! - The clients of [`GuardedClient`] follow no redirects (a redirect is a
//!   second URL nobody checked) and ignore proxy environment variables (a
//!   proxy would be connected to instead of the checked address).
//! - [`AddressGuard::check_url_resolving`] resolves at once as well, to
//!   refuse a URL when it is submitted (callbacks: 400 at execution) rather
//!   than fail a delivery later; the delivery is checked again at connect.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{CallbackConfig, HrefConfig};

/// Why a URL may not be fetched or called. The text says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressRefused {
    /// Not a URL at all.
    #[error("'{url}' is not a URL: {reason}")]
    NotAUrl {
        /// What was given.
        url: String,
        /// The parser's reason.
        reason: String,
    },
    /// A scheme other than http and https (`file:`, `ftp:`, `gopher:` …).
    #[error("only http and https URLs are allowed, not '{scheme}'")]
    Scheme {
        /// The scheme given.
        scheme: String,
    },
    /// A URL without a host (`http:///x` is normalised away; `data:` is not).
    #[error("'{url}' has no host")]
    NoHost {
        /// What was given.
        url: String,
    },
    /// The allow-list is not empty and does not name the host.
    #[error("host '{host}' is not in {setting}")]
    NotAllowListed {
        /// The host of the URL.
        host: String,
        /// The setting that lists the allowed hosts.
        setting: &'static str,
    },
    /// The host is, or resolves to, a loopback, private, link-local or
    /// otherwise non-public address, and is not allow-listed.
    #[error(
        "host '{host}' resolves to the non-public address {address}; add '{host}' to {setting} to allow it"
    )]
    NonPublic {
        /// The host of the URL.
        host: String,
        /// The first non-public address it resolved to.
        address: IpAddr,
        /// The setting that lists the allowed hosts.
        setting: &'static str,
    },
    /// The name did not resolve (or not in time).
    #[error("cannot resolve '{host}': {reason}")]
    Unresolvable {
        /// The host of the URL.
        host: String,
        /// The resolver's reason.
        reason: String,
    },
    /// The guarded HTTP client could not be built, so nothing is fetched.
    #[error("the HTTP client could not be built: {0}")]
    NoClient(String),
}

/// The future of one name lookup.
pub(crate) type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// How names become addresses: the system resolver in the server; a fixed
/// table in unit tests (a name that resolves to a chosen address).
type Lookup = dyn Fn(String) -> LookupFuture + Send + Sync;

/// The system resolver (getaddrinfo on a blocking thread, through tokio).
fn system_lookup(host: String) -> LookupFuture {
    Box::pin(async move {
        let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
        Ok(addresses.map(|a| a.ip()).collect())
    })
}

/// Checks URLs and resolves names for one setting's allow-list. Cheap to
/// clone (the list and the lookup are shared).
#[derive(Clone)]
pub struct AddressGuard {
    /// Allowed hosts, lower-cased, IPv6 literals without brackets.
    allowed_hosts: Arc<[String]>,
    /// The config key of the list, named in refusals.
    setting: &'static str,
    /// Longest a lookup may take: a resolver that never answers must not
    /// hold a request (or a worker) longer than the fetch itself may take.
    resolve_timeout: Duration,
    lookup: Arc<Lookup>,
}

impl std::fmt::Debug for AddressGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressGuard")
            .field("setting", &self.setting)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

/// A host as compared with the allow-list: lower case, no IPv6 brackets.
fn bare_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

impl AddressGuard {
    /// A guard for the allow-list `allowed_hosts` of the config key
    /// `setting`, resolving with the system resolver within
    /// `resolve_timeout`.
    pub fn new(setting: &'static str, allowed_hosts: &[String], resolve_timeout: Duration) -> Self {
        Self {
            allowed_hosts: allowed_hosts.iter().map(|h| bare_host(h)).collect(),
            setting,
            resolve_timeout,
            lookup: Arc::new(system_lookup),
        }
    }

    /// The guard of `href` inputs and modules deployed by reference.
    pub fn for_href(config: &HrefConfig) -> Self {
        Self::new("href.allowed_hosts", &config.allowed_hosts, config.timeout)
    }

    /// The guard of callbacks to `subscriber` URIs.
    pub fn for_callbacks(config: &CallbackConfig) -> Self {
        Self::new(
            "callbacks.allowed_hosts",
            &config.allowed_hosts,
            config.timeout,
        )
    }

    /// The same guard resolving names with `lookup` instead of the system
    /// resolver: how tests make a name answer a chosen address.
    #[cfg(test)]
    pub(crate) fn with_lookup(
        mut self,
        lookup: impl Fn(String) -> LookupFuture + Send + Sync + 'static,
    ) -> Self {
        self.lookup = Arc::new(lookup);
        self
    }

    /// Whether the allow-list names `bare` (already lower-cased, without
    /// brackets): exact match only, so `example.org` does not allow
    /// `evil.example.org`.
    fn is_listed(&self, bare: &str) -> bool {
        self.allowed_hosts.iter().any(|allowed| allowed == bare)
    }

    /// Check what `url` says by itself: an http(s) URL with a host that is
    /// allow-listed, or (with an empty list) that is a name or a public IP
    /// literal. Names are checked when they are resolved, by the client's
    /// resolver (see the module doc); this never touches the network.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, AddressRefused> {
        let parsed = reqwest::Url::parse(url).map_err(|e| AddressRefused::NotAUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(AddressRefused::Scheme {
                scheme: parsed.scheme().to_owned(),
            });
        }
        let host = parsed.host_str().ok_or_else(|| AddressRefused::NoHost {
            url: url.to_owned(),
        })?;
        let bare = bare_host(host);
        if self.is_listed(&bare) {
            return Ok(parsed);
        }
        if !self.allowed_hosts.is_empty() {
            return Err(self.not_listed(&bare));
        }
        // The URL parser has already normalised odd spellings of addresses
        // (`2130706433`, `0x7f.1`) into dotted quads, so this catches them.
        if let Ok(address) = bare.parse::<IpAddr>()
            && !is_public(address)
        {
            return Err(self.non_public(&bare, address));
        }
        Ok(parsed)
    }

    /// [`check_url`](Self::check_url), then resolve a name that is not
    /// allow-listed and check its addresses now: for refusing a URL when it
    /// is submitted. The connection made later resolves (and checks) again.
    pub async fn check_url_resolving(&self, url: &str) -> Result<reqwest::Url, AddressRefused> {
        let parsed = self.check_url(url)?;
        if let Some(host) = parsed.host_str()
            && !self.is_listed(&bare_host(host))
        {
            self.resolve_host(host).await?;
        }
        Ok(parsed)
    }

    /// Resolve `host` once and check every address: an allow-listed host
    /// gets its addresses unchecked; otherwise any non-public address
    /// refuses the host (a name with one private address among public ones
    /// could still be connected to through it). These addresses, and no
    /// others, are what the client connects to.
    pub async fn resolve_host(&self, host: &str) -> Result<Vec<IpAddr>, AddressRefused> {
        let bare = bare_host(host);
        let listed = self.is_listed(&bare);
        if !listed && !self.allowed_hosts.is_empty() {
            return Err(self.not_listed(&bare));
        }
        let addresses = match bare.parse::<IpAddr>() {
            Ok(address) => vec![address],
            Err(_) => {
                let unresolvable = |reason: String| AddressRefused::Unresolvable {
                    host: bare.clone(),
                    reason,
                };
                tokio::time::timeout(self.resolve_timeout, (self.lookup)(bare.clone()))
                    .await
                    .map_err(|_| {
                        unresolvable(format!(
                            "no answer within {}",
                            humantime::format_duration(self.resolve_timeout)
                        ))
                    })?
                    .map_err(|e| unresolvable(e.to_string()))?
            }
        };
        if addresses.is_empty() {
            return Err(AddressRefused::Unresolvable {
                host: bare,
                reason: "no addresses".into(),
            });
        }
        if !listed && let Some(address) = addresses.iter().find(|a| !is_public(**a)) {
            return Err(self.non_public(&bare, *address));
        }
        Ok(addresses)
    }

    /// The refusal of a host a non-empty allow-list does not name.
    fn not_listed(&self, bare: &str) -> AddressRefused {
        AddressRefused::NotAllowListed {
            host: bare.to_owned(),
            setting: self.setting,
        }
    }

    /// The refusal of a host that is, or resolves to, `address`.
    fn non_public(&self, bare: &str, address: IpAddr) -> AddressRefused {
        AddressRefused::NonPublic {
            host: bare.to_owned(),
            address,
            setting: self.setting,
        }
    }
}

impl reqwest::dns::Resolve for AddressGuard {
    /// The client's only way from a name to addresses: the checked ones.
    /// The port is 0, which reqwest replaces by the URL's (or the scheme's).
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let addresses = guard.resolve_host(name.as_str()).await?;
            let addrs: reqwest::dns::Addrs = Box::new(
                addresses
                    .into_iter()
                    .map(|address| SocketAddr::new(address, 0)),
            );
            Ok(addrs)
        })
    }
}

/// An HTTP client that reaches only what its guard allows: URLs pass
/// [`AddressGuard::check_url`], names resolve through the guard, no
/// redirects, no proxies. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GuardedClient {
    guard: AddressGuard,
    /// `Err` when reqwest could not build the client (it cannot fail with
    /// these settings; if it ever does, every request is refused with the
    /// reason instead of falling back to an unguarded client).
    client: Result<reqwest::Client, String>,
}

impl GuardedClient {
    /// A client whose every connection goes through `guard`.
    pub fn new(guard: AddressGuard) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(guard.clone()))
            .build()
            .map_err(|e| {
                tracing::error!(setting = guard.setting, error = %e, "cannot build the guarded HTTP client");
                e.to_string()
            });
        Self { guard, client }
    }

    /// The guard of this client.
    pub fn guard(&self) -> &AddressGuard {
        &self.guard
    }

    /// A request to `url`, once the URL itself passes the guard; its
    /// name is checked when the request connects.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, AddressRefused> {
        let url = self.guard.check_url(url)?;
        let client = self
            .client
            .as_ref()
            .map_err(|e| AddressRefused::NoClient(e.clone()))?;
        Ok(client.request(method, url))
    }
}

/// The guard's refusal inside a failed request, if that is why it failed
/// (reqwest wraps the resolver's error in its own connect errors).
pub fn refusal_in(error: &reqwest::Error) -> Option<&AddressRefused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    // Bounded: error chains are a handful of links deep.
    for _ in 0..16 {
        let current = source?;
        if let Some(refused) = current.downcast_ref::<AddressRefused>() {
            return Some(refused);
        }
        source = current.source();
    }
    None
}

/// Whether an address may be reached without being allow-listed: not
/// loopback, private, link-local, shared (CGNAT), unspecified, broadcast,
/// multicast, documentation, benchmarking or reserved, and no IPv6 form
/// that embeds such an IPv4 address (mapped, compatible, NAT64, 6to4).
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// [`is_public`] for IPv4: the special-purpose ranges of RFC 6890 that a
/// server could reach but the public cannot, or that mean "this host".
fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_documentation()
        || v4.is_multicast()
        // 0.0.0.0/8 "this network" (Linux connects 0.0.0.0 to localhost).
        || a == 0
        // 100.64.0.0/10 shared address space (carrier-grade NAT).
        || a == 100 && (b & 0xc0) == 64
        // 192.0.0.0/24 IETF protocol assignments.
        || a == 192 && b == 0 && c == 0
        // 198.18.0.0/15 benchmarking.
        || a == 198 && (b & 0xfe) == 18
        // 240.0.0.0/4 reserved.
        || a >= 240)
}

/// [`is_public`] for IPv6: the local ranges, and every form that carries an
/// IPv4 address inside (checked as that IPv4 address, since a dual-stack
/// host or a translator would deliver it there).
fn is_public_v6(v6: Ipv6Addr) -> bool {
    let segments = v6.segments();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let embedded_v4 = |high: u16, low: u16| {
        let [h1, h2] = high.to_be_bytes();
        let [l1, l2] = low.to_be_bytes();
        Ipv4Addr::new(h1, h2, l1, l2)
    };
    // ::a.b.c.d (IPv4-compatible, deprecated) and 64:ff9b::a.b.c.d (NAT64).
    if segments[..6] == [0; 6] && !(v6.is_loopback() || v6.is_unspecified())
        || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        return is_public_v4(embedded_v4(segments[6], segments[7]));
    }
    // 2002:a.b.c.d::/48 (6to4).
    if segments[0] == 0x2002 {
        return is_public_v4(embedded_v4(segments[1], segments[2]));
    }
    !(v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        // fc00::/7 unique local.
        || (segments[0] & 0xfe00) == 0xfc00
        // fe80::/10 link-local, fec0::/10 site-local (deprecated).
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        // 2001:db8::/32 documentation.
        || segments[0] == 0x2001 && segments[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guard of `href.allowed_hosts` with these hosts listed.
    fn guard(allowed: &[&str]) -> AddressGuard {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        AddressGuard::new("href.allowed_hosts", &allowed, Duration::from_secs(5))
    }

    #[test]
    fn public_means_not_loopback_private_or_embedded_in_ipv6() {
        let public = [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ];
        for address in public {
            assert!(is_public(address.parse().unwrap()), "{address}");
        }
        let non_public = [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2001:db8::1",
        ];
        for address in non_public {
            assert!(!is_public(address.parse().unwrap()), "{address}");
        }
    }

    #[test]
    fn urls_are_checked_without_resolving() {
        let open = guard(&[]);
        let refused = |g: &AddressGuard, url: &str| g.check_url(url).unwrap_err();
        let listed = guard(&["127.0.0.1", "LocalHost", "[::1]"]);
        // Each refusal that is not about the address: the guard, the URL
        // and the variant it must give.
        let variant = |e: &AddressRefused| match e {
            AddressRefused::Scheme { .. } => "Scheme",
            AddressRefused::NotAUrl { .. } => "NotAUrl",
            AddressRefused::NotAllowListed { .. } => "NotAllowListed",
            other => unreachable!("no case expects {other:?}"),
        };
        let cases = [
            (&open, "file:///etc/passwd", "Scheme"),
            (&open, "ftp://example.org/x", "Scheme"),
            (&open, "not a url", "NotAUrl"),
            (&listed, "http://10.1.2.3/x", "NotAllowListed"),
            (&listed, "https://example.org/x", "NotAllowListed"),
        ];
        for (guard, url, expected) in cases {
            let err = refused(guard, url);
            assert_eq!(variant(&err), expected, "{url}: {err:?}");
        }
        for url in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
            "http://10.1.2.3/x",
            "http://2130706433/x",
            "http://0x7f.1/x",
            "http://[::ffff:127.0.0.1]/x",
        ] {
            let err = refused(&open, url);
            assert!(err.to_string().contains("non-public"), "{url}: {err}");
            assert!(
                err.to_string().contains("href.allowed_hosts"),
                "{url}: {err}"
            );
        }
        // Names pass: they are checked when they are resolved.
        open.check_url("http://localhost:9/x").unwrap();
        open.check_url("https://example.org/x").unwrap();

        listed.check_url("http://127.0.0.1:9/x").unwrap();
        listed.check_url("http://localhost:9/x").unwrap();
        listed.check_url("http://[::1]:9/x").unwrap();
    }

    #[tokio::test]
    async fn resolving_checks_every_address_unless_the_name_is_listed() {
        let fixed = |addresses: &'static [&'static str]| {
            move |_name: String| -> LookupFuture {
                Box::pin(async move { Ok(addresses.iter().map(|a| a.parse().unwrap()).collect()) })
            }
        };
        let mixed = guard(&[]).with_lookup(fixed(&["93.184.216.34", "10.0.0.1"]));
        let err = mixed.resolve_host("mixed.test").await.unwrap_err();
        assert_eq!(
            err,
            AddressRefused::NonPublic {
                host: "mixed.test".into(),
                address: "10.0.0.1".parse().unwrap(),
                setting: "href.allowed_hosts",
            }
        );
        let listed = guard(&["mixed.test"]).with_lookup(fixed(&["93.184.216.34", "10.0.0.1"]));
        assert_eq!(listed.resolve_host("mixed.test").await.unwrap().len(), 2);
        let err = guard(&[])
            .with_lookup(fixed(&[]))
            .resolve_host("empty.test")
            .await
            .unwrap_err();
        assert!(matches!(err, AddressRefused::Unresolvable { .. }), "{err}");
    }

    /// What the HTTP client asks the guard: a name that answers a loopback
    /// address and is not allow-listed is refused, with the guard's error
    /// (reqwest hands it back inside its connect error).
    #[tokio::test]
    async fn the_resolver_refuses_a_name_answering_a_non_public_address() {
        use reqwest::dns::Resolve as _;
        let stub = |_name: String| -> LookupFuture {
            Box::pin(async { Ok(vec![IpAddr::from([127, 0, 0, 1])]) })
        };
        let open = guard(&[]).with_lookup(stub);
        let err = match open.resolve("rebind.test".parse().unwrap()).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err,
        };
        assert_eq!(
            err.downcast_ref::<AddressRefused>(),
            Some(&AddressRefused::NonPublic {
                host: "rebind.test".into(),
                address: IpAddr::from([127, 0, 0, 1]),
                setting: "href.allowed_hosts",
            })
        );
        let listed = guard(&["rebind.test"]).with_lookup(stub);
        let addrs: Vec<SocketAddr> = listed
            .resolve("rebind.test".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(addrs, vec![SocketAddr::from(([127, 0, 0, 1], 0))]);
    }
}
