//! Fetching a URL someone handed us (a media URL in Twilio's inbound webhook, an
//! admin's `MediaUrl`) without letting the URL choose where we connect:
//!
//! - only hosts in the allow list ([`AllowedHosts`], `INGEST_ALLOWED_HOSTS`), over
//!   `https` unless the entry names `http://host:port`;
//! - every address a name resolves to is checked ([`GuardedResolver`]), and so is
//!   a literal IP: no loopback, private, link-local (the metadata service
//!   169.254.169.254 included), shared, multicast or unspecified address, unless
//!   that exact `host:port` is an entry of the list (a local test server);
//! - redirects are followed by hand, at most [`MAX_REDIRECTS`], each re-checked;
//!   HTTP Basic credentials go only to the host first asked, never across a
//!   redirect to another host;
//! - connect and stalled-body timeouts; the body is read chunk by chunk
//!   ([`Fetched::chunk`]), so the caller decides how much to hold.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
pub use reqwest::Url;

/// Twilio's media hosts: the API (media URLs in webhooks), and where it
/// redirects them (`mms.twiliocdn.com` when HTTP auth on media is enforced,
/// `s3-external-1.amazonaws.com` before that; `media.twiliocdn.com` for sent media).
pub const TWILIO_MEDIA_HOSTS: &str =
    "api.twilio.com,mms.twiliocdn.com,media.twiliocdn.com,s3-external-1.amazonaws.com";

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 3;

/// One entry of the allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    /// `http` only when the entry says so (and then with a port).
    https: bool,
    /// Exact host (lowercase), or a suffix `.domain` for `*.domain`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostRule {
    fn matches(&self, https: bool, host: &str, port: u16) -> bool {
        let host_ok = if self.wildcard {
            host.ends_with(&self.host) && host.len() > self.host.len()
        } else {
            host == self.host
        };
        self.https == https && host_ok && self.port.is_none_or(|p| p == port)
    }

    /// Names exactly this host and port: internal addresses are allowed for it.
    fn is_exact(&self, host: &str, port: u16) -> bool {
        !self.wildcard && self.host == host && self.port == Some(port)
    }
}

/// The hosts media may be fetched from: comma-separated `host`, `*.domain`, with
/// an optional `:port`, or `http://host:port` for plain HTTP (local testing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts(Vec<HostRule>);

impl Default for AllowedHosts {
    fn default() -> Self {
        TWILIO_MEDIA_HOSTS.parse().expect("Twilio's hosts parse")
    }
}

impl FromStr for AllowedHosts {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let lower = entry.to_ascii_lowercase();
            let (https, rest) = if let Some(rest) = lower.strip_prefix("http://") {
                (false, rest)
            } else {
                (true, lower.strip_prefix("https://").unwrap_or(&lower))
            };
            let rest = rest.trim_end_matches('/');
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
                    let port = p
                        .parse::<u16>()
                        .map_err(|_| format!("'{entry}': the port must be a number"))?;
                    (h, Some(port))
                }
                _ => (rest, None),
            };
            if !https && port.is_none() {
                return Err(format!(
                    "'{entry}': plain http needs a port (http://host:port)"
                ));
            }
            let (wildcard, host) = match host.strip_prefix("*.") {
                Some(domain) => (true, format!(".{domain}")),
                None => (false, host.to_owned()),
            };
            if host.is_empty()
                || host.contains(['/', '@', '?', '#', '*', ' '])
                || (!https && wildcard)
            {
                return Err(format!(
                    "'{entry}' is not a host, *.domain or http://host:port"
                ));
            }
            rules.push(HostRule {
                https,
                host,
                wildcard,
                port,
            });
        }
        if rules.is_empty() {
            return Err("no host given".into());
        }
        Ok(Self(rules))
    }
}

impl AllowedHosts {
    /// Whether `url` may be fetched at all (scheme, host, port).
    pub fn allows(&self, url: &Url) -> bool {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return false,
        };
        let (Some(host), Some(port)) = (host_of(url), url.port_or_known_default()) else {
            return false;
        };
        self.0.iter().any(|r| r.matches(https, &host, port))
    }

    /// Whether this exact `host:port` is listed, so its internal address is meant.
    pub fn exempt(&self, host: &str, port: u16) -> bool {
        self.0.iter().any(|r| r.is_exact(host, port))
    }

    /// Hosts named with an exact port: their names may resolve to internal
    /// addresses (the URL's port is still checked by [`allows`](Self::allows)).
    fn exempt_names(&self) -> HashSet<String> {
        self.0
            .iter()
            .filter(|r| !r.wildcard && r.port.is_some())
            .map(|r| r.host.trim_matches(['[', ']']).to_owned())
            .collect()
    }
}

/// A URL's host, lowercase, IPv6 in brackets as in an allow-list entry.
fn host_of(url: &Url) -> Option<String> {
    match url.host()? {
        url::Host::Domain(d) => Some(d.to_ascii_lowercase()),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(format!("[{ip}]")),
    }
}

/// An address no fetch may reach unless allow-listed exactly: loopback, private,
/// shared (CGNAT), link-local (the cloud metadata service), multicast,
/// broadcast, unspecified, documentation, and their IPv6 counterparts.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 of any v4
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space
        || o[0] >= 240
}

/// Why a fetch stopped. The texts are safe to show: they name the URL's host at
/// most, never an address it resolved to beyond saying what kind it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("not a valid http(s) URL")]
    BadUrl,
    #[error("host {0} is not in INGEST_ALLOWED_HOSTS")]
    HostNotAllowed(String),
    #[error("host {0} resolves to an internal address")]
    InternalAddress(String),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("the media host answered {0}")]
    Status(u16),
    #[error("the media host did not answer in time")]
    Timeout,
    #[error("the media host stopped sending")]
    Stalled,
    #[error("the media host could not be reached")]
    Unreachable,
}

impl FetchError {
    /// Worth another attempt later: the host may answer next time.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status(s) => *s >= 500 || *s == 429 || *s == 408,
            FetchError::Timeout | FetchError::Stalled | FetchError::Unreachable => true,
            _ => false,
        }
    }
}

/// The resolver every fetch uses: refuses a name whose addresses include an
/// internal one (unless the name is allow-listed with an exact port), so a
/// DNS answer cannot point an allowed name at the metadata service.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    exempt: Arc<HashSet<String>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to an internal address")]
struct InternalAddress(String);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let exempt = self.exempt.contains(&host);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !exempt && addrs.iter().any(|a| is_internal(a.ip())) {
                return Err(Box::new(InternalAddress(host)) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Timeouts of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTimeouts {
    /// To connect (TCP and TLS).
    pub connect: Duration,
    /// For the response headers, and between two chunks of the body.
    pub stall: Duration,
}

impl Default for FetchTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            stall: Duration::from_secs(15),
        }
    }
}

/// A reqwest client built on its first use. Building one reads the system's root
/// certificates (a few ms, measured by scripts/bench-lambda), which the cold start
/// of a function that never calls out (no webhook, no URL to fetch) should not pay.
#[derive(Clone)]
pub struct LazyClient {
    client: Arc<std::sync::OnceLock<reqwest::Client>>,
    builder: Arc<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
}

impl LazyClient {
    /// `builder` has only static settings, so building cannot fail.
    pub fn new(builder: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static) -> Self {
        Self {
            client: Arc::default(),
            builder: Arc::new(builder),
        }
    }

    pub fn get(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            (self.builder)()
                .build()
                .expect("an HTTP client with static settings builds")
        })
    }
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.client.get().is_some())
            .finish()
    }
}

/// The HTTP client for media URLs, with its allow list; cheap to clone.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: LazyClient,
    allowed: Arc<AllowedHosts>,
    timeouts: FetchTimeouts,
}

/// A response being read.
#[derive(Debug)]
pub struct Fetched {
    response: reqwest::Response,
    stall: Duration,
}

impl Fetched {
    /// The type the host declared, without parameters.
    pub fn content_type(&self) -> Option<String> {
        self.response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
    }

    pub fn content_length(&self) -> Option<u64> {
        self.response.content_length()
    }

    /// The next chunk of the body, `None` at its end; a pause longer than the
    /// stall timeout ends the fetch.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        match tokio::time::timeout(self.stall, self.response.chunk()).await {
            Err(_) => Err(FetchError::Stalled),
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(e)) if e.is_timeout() => Err(FetchError::Stalled),
            Ok(Err(_)) => Err(FetchError::Unreachable),
        }
    }
}

impl Fetcher {
    pub fn new(allowed: AllowedHosts, timeouts: FetchTimeouts) -> Self {
        let resolver = GuardedResolver {
            exempt: Arc::new(allowed.exempt_names()),
        };
        let connect = timeouts.connect;
        let client = LazyClient::new(move || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .dns_resolver(Arc::new(resolver.clone()))
                .connect_timeout(connect)
                .user_agent("chat-media-ingest/1")
        });
        Self {
            client,
            allowed: Arc::new(allowed),
            timeouts,
        }
    }

    pub fn allowed(&self) -> &AllowedHosts {
        &self.allowed
    }

    /// Checks a URL before connecting: allowed scheme, host and port, and a
    /// literal IP (which no resolver sees) not internal unless listed exactly.
    pub fn check(&self, url: &Url) -> Result<(), FetchError> {
        let host = host_of(url).ok_or(FetchError::BadUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl);
        }
        if !self.allowed.allows(url) {
            return Err(FetchError::HostNotAllowed(host));
        }
        let port = url.port_or_known_default().ok_or(FetchError::BadUrl)?;
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(is_internal) && !self.allowed.exempt(&host, port) {
            return Err(FetchError::InternalAddress(host));
        }
        Ok(())
    }

    /// GETs `url`, following at most [`MAX_REDIRECTS`] redirects, each checked as
    /// the first URL. `basic` (user, password) is sent to the first host only and
    /// to redirects that stay on that host and port.
    pub async fn open(
        &self,
        url: &str,
        basic: Option<(&str, &str)>,
    ) -> Result<Fetched, FetchError> {
        let mut url = Url::parse(url).map_err(|_| FetchError::BadUrl)?;
        let origin = (host_of(&url), url.port_or_known_default());
        for _ in 0..=MAX_REDIRECTS {
            self.check(&url)?;
            let mut req = self.client.get().get(url.clone());
            if let Some((user, password)) = basic {
                if (host_of(&url), url.port_or_known_default()) == origin {
                    req = req.basic_auth(user, Some(password));
                }
            }
            let host = host_of(&url).unwrap_or_default();
            let response = match tokio::time::timeout(self.timeouts.stall, req.send()).await {
                Err(_) => return Err(FetchError::Timeout),
                Ok(Err(e)) => return Err(classify(&e, host)),
                Ok(Ok(r)) => r,
            };
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or(FetchError::Status(status.as_u16()))?;
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            return Ok(Fetched {
                response,
                stall: self.timeouts.stall,
            });
        }
        Err(FetchError::TooManyRedirects)
    }
}

/// What a client error means for the caller: the resolver's refusal is found
/// in the error's sources.
fn classify(e: &reqwest::Error, host: String) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<InternalAddress>() {
            return FetchError::InternalAddress(host);
        }
        source = s.source();
    }
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Unreachable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn the_default_list_is_twilios_media_hosts_over_https() {
        let a = AllowedHosts::default();
        assert!(a.allows(&url(
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
        )));
        assert!(a.allows(&url("https://mms.twiliocdn.com/x")));
        assert!(!a.allows(&url("http://api.twilio.com/x")), "https only");
        assert!(!a.allows(&url("https://api.twilio.com.evil.example/x")));
        assert!(!a.allows(&url("https://evil.example/x")));
    }

    #[test]
    fn entries_name_hosts_wildcards_ports_and_plain_http_with_a_port() {
        let a: AllowedHosts = "*.example.com:8443, http://127.0.0.1:9000, cdn.test"
            .parse()
            .unwrap();
        assert!(a.allows(&url("https://a.example.com:8443/x")));
        assert!(
            !a.allows(&url("https://a.example.com/x")),
            "port 443 is not 8443"
        );
        assert!(
            !a.allows(&url("https://example.com:8443/x")),
            "*. needs a subdomain"
        );
        assert!(a.allows(&url("http://127.0.0.1:9000/x")));
        assert!(!a.allows(&url("http://127.0.0.1:9001/x")));
        assert!(
            !a.allows(&url("https://127.0.0.1:9000/x")),
            "the entry names http"
        );
        assert!(
            a.allows(&url("https://cdn.test:1234/x")),
            "no port: any port"
        );
        assert!(!a.allows(&url("http://cdn.test:1234/x")));
        assert!(a.exempt("127.0.0.1", 9000));
        assert!(!a.exempt("cdn.test", 443));
        assert!(
            "http://host".parse::<AllowedHosts>().is_err(),
            "http needs a port"
        );
        assert!("".parse::<AllowedHosts>().is_err());
        assert!("a/b".parse::<AllowedHosts>().is_err());
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "ff02::1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "52.1.2.3", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_internal_addresses_are_refused_unless_listed_exactly() {
        let f = Fetcher::new(
            "http://127.0.0.1:9000,169.254.169.254,localhost"
                .parse()
                .unwrap(),
            FetchTimeouts::default(),
        );
        assert_eq!(f.check(&url("http://127.0.0.1:9000/a")), Ok(()));
        assert_eq!(
            f.check(&url("https://169.254.169.254/latest/meta-data/")),
            Err(FetchError::InternalAddress("169.254.169.254".into()))
        );
        assert_eq!(
            f.check(&url("http://10.0.0.1:9000/")),
            Err(FetchError::HostNotAllowed("10.0.0.1".into()))
        );
        assert_eq!(f.check(&url("ftp://localhost/")), Err(FetchError::BadUrl));
    }
}
