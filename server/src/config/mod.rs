//! Configuration: read once from the environment (and `.env`), typed and
//! validated before anything starts. Every variable (docs/configuration.md) lives
//! here with its default; secrets are held in types that never print.

pub mod variables;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use self::variables::{self as v, Variable};
use crate::domain::phone::Region;
use crate::domain::webhook_target::TargetPolicy;
use crate::flow::PublicBaseUrl;
use crate::notify::push::vapid::Vapid;
use crate::notify::signing::WebhookSecret;
use crate::providers::voice_token::{VOICE_TOKEN_PROVIDERS, VoiceTokenSettings};
use crate::providers::{PROVIDERS, ProviderVars, Providers};
use crate::rotation::Rotating;

/// The validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    /// `HOST`: listen address. Default `0.0.0.0`.
    pub host: String,
    /// `PORT`: listen port; 0 picks a free one (tests). Default 8080.
    pub port: u16,
    /// `PUBLIC_BASE_URL`: the URL the CPaaS calls, without a trailing slash;
    /// signatures are checked against it. Default `http://localhost:$PORT`.
    pub public_base_url: PublicBaseUrl,
    /// `REDIS_URL`, `REDIS_CLUSTER_URLS` or `REDIS_SENTINEL_URLS` +
    /// `REDIS_SENTINEL_MASTER` (at most one of them): the Redis every
    /// instance shares; unset → the embedded in-memory store (one instance
    /// only).
    pub redis: Option<RedisTarget>,
    /// `REDIS_TLS_INSECURE`: `rediss://` connections accept the server's
    /// certificate unverified (Heroku's self-signed ones). Default false.
    pub redis_tls_insecure: bool,
    /// `REDIS_KEY_PREFIX`: namespace of every Redis key. Default `ringrelay`.
    pub redis_key_prefix: String,
    /// `ADMIN_TOKEN`: bearer of the admin API; unset → the admin API answers 503.
    pub admin_token: Option<SecretString>,
    /// The CPaaS providers configured by their variables (`TWILIO_AUTH_TOKEN`,
    /// `TELNYX_PUBLIC_KEY`, …: each provider's list in `providers::PROVIDERS`;
    /// credentials take `current,next` while they rotate);
    /// a provider whose credential is unset answers 503 on its routes.
    pub providers: Providers,
    /// `WEBHOOK_SECRET` (`whsec_<base64>`, or two separated by a comma while
    /// it rotates): signs outgoing webhooks, with each secret; required by
    /// any subscriber with a `webhook_url`.
    pub webhook_secret: Option<Rotating<WebhookSecret>>,
    /// `DEFAULT_REGION`: region for national-format numbers. Default US.
    pub default_region: Region,
    /// `SESSION_TTL_SECS`: a session lives this long after its last change.
    /// Default 120 s.
    pub session_ttl: Duration,
    /// `HISTORY_TTL_SECS`: how long an ended session stays listed (and
    /// readable). Default 86400 s, 1 to 2592000 (30 days).
    pub history_ttl: Duration,
    /// `NOTIFY_TIMEOUT_MS`: per-notification deadline before the instruction
    /// goes out anyway. Default 2000 ms.
    pub notify_timeout: Duration,
    /// `FORWARD_TIMEOUT_SECS`: a session told to reject that no forwarded
    /// call claims by then ends `expired`. Default 30 s, 1 to 600.
    pub forward_timeout: Duration,
    /// `SUBSCRIBERS_FILE`: subscribers upserted at start (JSON array or TOML
    /// `[[subscribers]]`).
    pub subscribers_file: Option<PathBuf>,
    /// `TEMPLATES_DIR`: a folder whose files replace the spoken texts of
    /// `server/templates/`.
    pub templates_dir: Option<PathBuf>,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `RUST_LOG`: the log filter. Default `info`.
    pub log_filter: String,
    /// `ALLOW_PRIVATE_WEBHOOKS`: whether a `webhook_url` may name a private,
    /// loopback or link-local host. Default false.
    pub webhook_targets: TargetPolicy,
    /// `TRUST_PROXY`: whether the platform's router says who the client is
    /// (`Fly-Client-IP`, else the last `X-Forwarded-For` entry: behind
    /// Heroku's and Fly's routers). Default false.
    pub trust_proxy: bool,
    /// `MAX_STREAMS`: live event streams one instance keeps open. Default 10000.
    pub max_streams: usize,
    /// `MAX_STREAMS_PER_DESTINATION`: live streams per destination. Default 8.
    pub max_streams_per_destination: usize,
    /// `VOICE_TOKEN_PROVIDER`, `VOICE_TOKEN_TTL_SECS` and each provider's
    /// credentials for softphone tokens (docs/api.md).
    pub voice_tokens: VoiceTokenSettings,
    /// `VAPID_PRIVATE_KEY` + `VAPID_SUBJECT`: Web Push (docs/api.md);
    /// unset, the push routes answer 503.
    pub vapid: Option<Vapid>,
    /// `SUBSCRIBER_CACHE_ENTRIES`: subscribers one instance keeps in memory,
    /// the most recently used. Default 50000.
    pub subscriber_cache_entries: usize,
}

/// Where the shared Redis is, and how it is deployed. The URLs are secret
/// because they may carry a password; `rediss://` is TLS, and a URL ending
/// in `#insecure` skips the certificate check (Heroku's self-signed ones).
#[derive(Debug, Clone)]
pub enum RedisTarget {
    /// `REDIS_URL`: one server (or a primary with replicas behind one name).
    Standalone(SecretString),
    /// `REDIS_CLUSTER_URLS`: the seed nodes of a Redis Cluster; the others
    /// are found through them.
    Cluster(Vec<SecretString>),
    /// `REDIS_SENTINEL_URLS` + `REDIS_SENTINEL_MASTER`: the sentinels that
    /// know which server is the primary of the service named `master`. The
    /// credentials and TLS of the first sentinel URL are used for the
    /// primary too.
    Sentinel {
        sentinels: Vec<SecretString>,
        master: String,
    },
}

impl RedisTarget {
    /// One server at `url` (tests and tools; the service parses its
    /// variables with [`Config::from_vars`]).
    pub fn standalone(url: &str) -> Self {
        Self::Standalone(SecretString::from(url.to_owned()))
    }

    /// How the log line at start names the store.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "redis",
            Self::Cluster(_) => "redis-cluster",
            Self::Sentinel { .. } => "redis-sentinel",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration that cannot start: one line naming the variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// The variables that are set, by their declaration. Values are as given;
/// empty ones count as unset (a `.env` line `ADMIN_TOKEN=` means "not set"),
/// and names the service does not read are left out.
struct Env(BTreeMap<&'static str, String>);

impl Env {
    fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(
            vars.into_iter()
                .filter(|(_, value)| !value.is_empty())
                .filter_map(|(name, value)| variables::named(&name).map(|v| (v.name, value)))
                .collect(),
        )
    }

    /// The value set for `variable`.
    fn set(&self, variable: &Variable) -> Option<&str> {
        self.0.get(variable.name).map(String::as_str)
    }

    /// The value set for `variable`, else its declared literal default.
    fn value(&self, variable: &Variable) -> Option<&str> {
        self.set(variable).or(match variable.when_unset {
            variables::WhenUnset::Value(default) => Some(default),
            _ => None,
        })
    }

    /// `variable`'s value (or literal default) read by `parse`; the problem
    /// is named with the variable.
    fn parse<T>(
        &self,
        variable: &Variable,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.value(variable)
            .map(|raw| parse(raw).map_err(|problem| ConfigError::new(variable.name, problem)))
            .transpose()
    }

    /// [`Env::parse`] for a variable with a literal default: always a value.
    fn parse_or_default<T>(
        &self,
        variable: &Variable,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.parse(variable, parse)?.ok_or_else(|| {
            ConfigError::new(
                variable.name,
                "has no default (a bug: its declaration lacks one)",
            )
        })
    }

    /// The providers' variables that are set, as their table lists them.
    fn provider_vars(&self) -> ProviderVars {
        let mut vars = ProviderVars::default();
        for name in PROVIDERS.iter().flat_map(|p| p.variables) {
            if let Some(value) = self.0.get(name) {
                vars.insert(name, value.clone());
            }
        }
        vars
    }
}

impl Config {
    /// Reads `.env` when present (without overriding real variables), then the
    /// process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Err(ConfigError::new(".env", e.to_string()));
        }
        Self::from_vars(std::env::vars())
    }

    /// Builds the configuration from explicit `(NAME, value)` pairs; names
    /// the service does not read ([`variables::ALL`]) are ignored.
    pub fn from_vars<I>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let env = Env::new(vars);
        let providers = Providers::configure(&env.provider_vars())
            .map_err(|(name, problem)| ConfigError::new(name, problem))?;
        let port = env.parse_or_default(&v::PORT, |p| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("must be a whole number from 0 to 65535, got {p:?}"))
        })?;
        let host = env.parse_or_default(&v::HOST, |host| {
            if is_listen_address(host) {
                Ok(host.to_owned())
            } else {
                Err(format!(
                    "must be an IP address or a host name, got {:?}",
                    clip(host)
                ))
            }
        })?;
        let public_base_url = match env.set(&v::PUBLIC_BASE_URL) {
            Some(url) => PublicBaseUrl::parse(url).map_err(|p| {
                ConfigError::new(v::PUBLIC_BASE_URL.name, format!("{p}, got {:?}", clip(url)))
            })?,
            // The platform says where it serves the app, when it does.
            None => match (
                env.set(&v::FLY_APP_NAME),
                env.set(&v::HEROKU_APP_DEFAULT_DOMAIN_NAME),
            ) {
                (Some(app), _) => PublicBaseUrl::parse(&format!("https://{app}.fly.dev"))
                    .map_err(|p| ConfigError::new(v::FLY_APP_NAME.name, p))?,
                (None, Some(domain)) => PublicBaseUrl::parse(&format!("https://{domain}"))
                    .map_err(|p| ConfigError::new(v::HEROKU_APP_DEFAULT_DOMAIN_NAME.name, p))?,
                (None, None) => PublicBaseUrl::localhost(port),
            },
        };
        let admin_token = env.parse(&v::ADMIN_TOKEN, |token| {
            if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                Err(format!(
                    "must be at least {MIN_ADMIN_TOKEN_CHARS} characters long"
                ))
            } else {
                Ok(SecretString::from(token))
            }
        })?;
        let redis = redis_target(&env)?;
        let redis_key_prefix = env.parse_or_default(&v::REDIS_KEY_PREFIX, |prefix| {
            // Braces would make a Redis Cluster hash tag of the prefix,
            // putting every key in one slot.
            if prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '{' || c == '}')
            {
                Err("must not contain spaces, control characters or braces".into())
            } else {
                Ok(prefix.to_owned())
            }
        })?;
        let webhook_secret = env.parse(&v::WEBHOOK_SECRET, |s| {
            Rotating::parse(s, WebhookSecret::parse)
        })?;
        let default_region = env.parse_or_default(&v::DEFAULT_REGION, Region::parse)?;
        let session_ttl =
            Duration::from_secs(env.parse_or_default(&v::SESSION_TTL_SECS, positive)?);
        let history_ttl =
            Duration::from_secs(env.parse_or_default(&v::HISTORY_TTL_SECS, |raw| {
                at_most(positive(raw)?, MAX_HISTORY_TTL.as_secs(), "")
            })?);
        let notify_timeout =
            Duration::from_millis(env.parse_or_default(&v::NOTIFY_TIMEOUT_MS, |raw| {
                at_most(positive(raw)?, MAX_NOTIFY_TIMEOUT_MS, " ms")
            })?);
        let forward_timeout =
            Duration::from_secs(env.parse_or_default(&v::FORWARD_TIMEOUT_SECS, |raw| {
                at_most(positive(raw)?, MAX_FORWARD_TIMEOUT_SECS, " seconds")
            })?);
        let templates_dir = env.parse(&v::TEMPLATES_DIR, |dir| {
            let dir = PathBuf::from(dir);
            if dir.is_dir() {
                Ok(dir)
            } else {
                Err("is not a folder that exists".into())
            }
        })?;
        let webhook_targets = if env.parse_or_default(&v::ALLOW_PRIVATE_WEBHOOKS, flag)? {
            TargetPolicy::AllowPrivate
        } else {
            TargetPolicy::PublicOnly
        };
        let log_format = env.parse_or_default(&v::LOG_FORMAT, |format| match format.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("must be text or json, got {other:?}")),
        })?;
        let log_filter = env.parse_or_default(&v::RUST_LOG, |filter| {
            tracing_subscriber::EnvFilter::builder()
                .parse(filter)
                .map(|_| filter.to_owned())
                .map_err(|e| format!("is not a valid log filter ({e})"))
        })?;
        let count = |raw: &str| positive(raw).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let voice_tokens = voice_token_settings(&env)?;
        let vapid = vapid(&env)?;
        Ok(Self {
            host,
            port,
            public_base_url,
            redis,
            redis_tls_insecure: env.parse_or_default(&v::REDIS_TLS_INSECURE, flag)?,
            redis_key_prefix,
            admin_token,
            providers,
            webhook_secret,
            default_region,
            session_ttl,
            history_ttl,
            notify_timeout,
            forward_timeout,
            subscribers_file: env.parse(&v::SUBSCRIBERS_FILE, |path| Ok(PathBuf::from(path)))?,
            templates_dir,
            log_format,
            log_filter,
            webhook_targets,
            trust_proxy: env.parse_or_default(&v::TRUST_PROXY, flag)?,
            max_streams: env.parse_or_default(&v::MAX_STREAMS, count)?,
            max_streams_per_destination: env
                .parse_or_default(&v::MAX_STREAMS_PER_DESTINATION, count)?,
            voice_tokens,
            vapid,
            subscriber_cache_entries: env.parse_or_default(&v::SUBSCRIBER_CACHE_ENTRIES, count)?,
        })
    }
}

/// The VAPID identity, when Web Push is on: the key and the subject go
/// together, and a key that is no P-256 key stops the start.
fn vapid(env: &Env) -> Result<Option<Vapid>, ConfigError> {
    match (env.set(&v::VAPID_PRIVATE_KEY), env.set(&v::VAPID_SUBJECT)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            v::VAPID_SUBJECT.name,
            "must be set with VAPID_PRIVATE_KEY: a mailto: or https: URL push services can reach you at",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            v::VAPID_SUBJECT.name,
            "is only used with VAPID_PRIVATE_KEY, which is not set",
        )),
        (Some(key), Some(subject)) => {
            Vapid::parse(key, subject)
                .map(Some)
                .map_err(|(variable, problem)| {
                    let variable = if variable == v::VAPID_SUBJECT.name {
                        v::VAPID_SUBJECT.name
                    } else {
                        v::VAPID_PRIVATE_KEY.name
                    };
                    ConfigError::new(variable, problem)
                })
        }
    }
}

/// What softphone tokens are issued with: which provider, for how long,
/// and each provider's credentials (the route names what is missing).
fn voice_token_settings(env: &Env) -> Result<VoiceTokenSettings, ConfigError> {
    let text = |variable: &Variable| -> Result<Option<String>, ConfigError> {
        env.parse(variable, |raw| {
            let raw = raw.trim();
            if raw.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err("must be one word without spaces".into())
            } else {
                Ok(raw.to_owned())
            }
        })
    };
    let secret = |variable: &Variable| -> Result<Option<SecretString>, ConfigError> {
        Ok(text(variable)?.map(SecretString::from))
    };
    let base_url = |variable: &Variable, raw: &str| -> Result<url::Url, ConfigError> {
        url::Url::parse(raw.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
            .filter(|u| u.username().is_empty() && u.password().is_none() && u.query().is_none())
            .ok_or_else(|| {
                ConfigError::new(
                    variable.name,
                    format!("must be an https:// URL, got {:?}", clip(raw)),
                )
            })
    };
    let provider = env.parse(&v::VOICE_TOKEN_PROVIDER, |raw| {
        VOICE_TOKEN_PROVIDERS
            .iter()
            .copied()
            .find(|p| raw.trim().eq_ignore_ascii_case(p))
            .ok_or_else(|| {
                format!(
                    "must be one of {}, got {:?}",
                    VOICE_TOKEN_PROVIDERS.join(", "),
                    clip(raw)
                )
            })
    })?;
    let ttl = env.parse_or_default(&v::VOICE_TOKEN_TTL_SECS, |raw| {
        let secs = positive(raw)?;
        if (60..=86_400).contains(&secs) {
            Ok(Duration::from_secs(secs))
        } else {
            Err(format!("must be 60 to 86400 seconds, got {secs}"))
        }
    })?;
    let space = env.parse(&v::SIGNALWIRE_SPACE, |raw| {
        let raw = raw.trim();
        let ok = (1..=63).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Ok(raw.to_ascii_lowercase())
        } else {
            Err("must be letters, digits and '-', at most 63".to_owned())
        }
    })?;
    let signalwire_api_base = match (env.set(&v::SIGNALWIRE_API_BASE), space) {
        (Some(raw), _) => Some(base_url(&v::SIGNALWIRE_API_BASE, raw)?),
        (None, Some(space)) => Some(base_url(
            &v::SIGNALWIRE_SPACE,
            &format!("https://{space}.signalwire.com"),
        )?),
        (None, None) => None,
    };
    let api_base = |variable: &Variable| {
        env.value(variable)
            .map(|raw| base_url(variable, raw))
            .transpose()
    };
    // Plivo's endpoint tokens are signed with the current auth token, and
    // the APIs take the current one.
    let current = |variable: &Variable| {
        env.set(variable)
            .and_then(|raw| raw.split(',').map(str::trim).find(|t| !t.is_empty()))
            .map(|t| SecretString::from(t.to_owned()))
    };
    Ok(VoiceTokenSettings {
        provider,
        ttl,
        twilio_account_sid: text(&v::TWILIO_ACCOUNT_SID)?,
        twilio_api_key_sid: text(&v::TWILIO_API_KEY_SID)?,
        twilio_api_key_secret: secret(&v::TWILIO_API_KEY_SECRET)?,
        twilio_twiml_app_sid: text(&v::TWILIO_TWIML_APP_SID)?,
        twilio_auth_token: current(&v::TWILIO_AUTH_TOKEN),
        twilio_api_base: api_base(&v::TWILIO_API_BASE)?,
        plivo_auth_id: text(&v::PLIVO_AUTH_ID)?,
        plivo_auth_token: current(&v::PLIVO_AUTH_TOKEN),
        plivo_api_base: api_base(&v::PLIVO_API_BASE)?,
        telnyx_api_key: secret(&v::TELNYX_API_KEY)?,
        telnyx_api_base: api_base(&v::TELNYX_API_BASE)?,
        signalwire_project_id: text(&v::SIGNALWIRE_PROJECT_ID)?,
        signalwire_api_token: secret(&v::SIGNALWIRE_API_TOKEN)?,
        signalwire_api_base,
    })
}

/// The Redis the variables name: at most one of `REDIS_URL`,
/// `REDIS_CLUSTER_URLS` and `REDIS_SENTINEL_URLS`, since two would leave it
/// to chance which one the instances share.
fn redis_target(env: &Env) -> Result<Option<RedisTarget>, ConfigError> {
    let url = env.set(&v::REDIS_URL);
    let cluster_urls = env.set(&v::REDIS_CLUSTER_URLS);
    let sentinel_urls = env.set(&v::REDIS_SENTINEL_URLS);
    let sentinel_master = env.set(&v::REDIS_SENTINEL_MASTER);
    let set: Vec<&'static str> = [
        (v::REDIS_URL.name, url.is_some()),
        (v::REDIS_CLUSTER_URLS.name, cluster_urls.is_some()),
        (v::REDIS_SENTINEL_URLS.name, sentinel_urls.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, is_set)| is_set.then_some(name))
    .collect();
    if let [first, second, ..] = set[..] {
        return Err(ConfigError::new(
            second,
            format!("cannot be set together with {first}: set only one of them"),
        ));
    }
    if sentinel_master.is_some() && sentinel_urls.is_none() {
        return Err(ConfigError::new(
            v::REDIS_SENTINEL_MASTER.name,
            "is only used with REDIS_SENTINEL_URLS, which is not set",
        ));
    }
    if let Some(url) = url {
        let url = redis_url(v::REDIS_URL.name, url.trim())?;
        return Ok(Some(RedisTarget::Standalone(url)));
    }
    if let Some(urls) = cluster_urls {
        let seeds = redis_urls(v::REDIS_CLUSTER_URLS.name, urls, false)?;
        return Ok(Some(RedisTarget::Cluster(seeds)));
    }
    if let Some(urls) = sentinel_urls {
        let sentinels = redis_urls(v::REDIS_SENTINEL_URLS.name, urls, true)?;
        let master = sentinel_master
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    v::REDIS_SENTINEL_MASTER.name,
                    "must name the primary's service (as in the sentinels' `sentinel monitor <name> ...`) when REDIS_SENTINEL_URLS is set",
                )
            })?;
        if master.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::new(
                v::REDIS_SENTINEL_MASTER.name,
                "must not contain spaces or control characters",
            ));
        }
        return Ok(Some(RedisTarget::Sentinel { sentinels, master }));
    }
    Ok(None)
}

/// A `redis://` or `rediss://` URL. Parsing does not connect; the message
/// never echoes the value, which may hold a password.
fn redis_url(variable: &'static str, url: &str) -> Result<SecretString, ConfigError> {
    let parsed = redis::Client::open(url)
        .map_err(|_| ConfigError::new(variable, "is not a valid redis:// or rediss:// URL"))?;
    if matches!(
        parsed.get_connection_info().addr(),
        redis::ConnectionAddr::Unix(_)
    ) && variable != "REDIS_URL"
    {
        return Err(ConfigError::new(
            variable,
            "must list redis:// or rediss:// URLs, not sockets",
        ));
    }
    Ok(SecretString::from(url.to_owned()))
}

/// A comma-separated list of URLs, all plain or all TLS (one connection
/// setting serves every node). `bare_addresses`: `host:port` stands for
/// `redis://host:port` (how sentinels are usually listed).
fn redis_urls(
    variable: &'static str,
    list: &str,
    bare_addresses: bool,
) -> Result<Vec<SecretString>, ConfigError> {
    let mut urls = Vec::new();
    let mut schemes = Vec::new();
    for (n, item) in list.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            continue;
        }
        let item = if bare_addresses && !item.contains("://") {
            format!("redis://{item}")
        } else {
            item.to_owned()
        };
        let url = redis_url(variable, &item).map_err(|err| {
            ConfigError::new(variable, format!("entry {} {}", n + 1, err.problem))
        })?;
        schemes.push(item.starts_with("rediss://"));
        urls.push(url);
    }
    if urls.is_empty() {
        return Err(ConfigError::new(
            variable,
            "must list at least one redis:// or rediss:// URL, comma-separated",
        ));
    }
    if schemes.iter().any(|&tls| tls != schemes[0]) {
        return Err(ConfigError::new(
            variable,
            "must be all redis:// or all rediss:// URLs",
        ));
    }
    Ok(urls)
}

/// The longest `HISTORY_TTL_SECS`: 30 days.
const MAX_HISTORY_TTL: Duration = Duration::from_secs(30 * 86_400);

/// The shortest `ADMIN_TOKEN` accepted: a short one is guessed.
const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// The longest `NOTIFY_TIMEOUT_MS`: the phone rings meanwhile, and the
/// carrier's no-reply timer (5 to 30 s) must not run out before it rejects.
const MAX_NOTIFY_TIMEOUT_MS: u64 = 10_000;

/// `true` or `false` (also `1`/`0`, `yes`/`no`).
fn flag(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

/// An IP address, or a host name made of DNS labels that is not a dotted
/// quad in disguise (`999.1.1.1`).
fn is_listen_address(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let labels_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
        });
    let all_numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    labels_ok && !all_numeric
}

/// At most 64 characters of a value, for an error message.
fn clip(value: &str) -> String {
    value.chars().take(64).collect()
}

/// The longest `FORWARD_TIMEOUT_SECS`.
const MAX_FORWARD_TIMEOUT_SECS: u64 = 600;

/// A whole number greater than 0.
fn positive(raw: &str) -> Result<u64, String> {
    match raw.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "must be a whole number greater than 0, got {raw:?}"
        )),
    }
}

/// `n`, unless it is over `max` (`unit` follows the number in the message).
fn at_most(n: u64, max: u64, unit: &str) -> Result<u64, String> {
    if n > max {
        Err(format!("must be at most {max}{unit}"))
    } else {
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_match_the_contract_when_nothing_is_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.public_base_url.as_str(), "http://localhost:8080");
        assert!(c.redis.is_none());
        assert_eq!(c.redis_key_prefix, "ringrelay");
        assert_eq!(c.default_region, Region::default());
        assert_eq!(c.session_ttl, Duration::from_secs(120));
        assert_eq!(c.history_ttl, Duration::from_secs(86_400));
        assert_eq!(c.forward_timeout, Duration::from_secs(30));
        assert_eq!(c.notify_timeout, Duration::from_millis(2000));
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.log_filter, "info");
        assert!(c.admin_token.is_none() && c.webhook_secret.is_none());
    }

    #[test]
    fn public_base_url_defaults_to_the_configured_port() {
        let c = config(&[("PORT", "5000")]).unwrap();
        assert_eq!(c.public_base_url.as_str(), "http://localhost:5000");
    }

    #[test]
    fn public_base_url_keeps_port_and_path_but_drops_trailing_slash() {
        let c = config(&[("PUBLIC_BASE_URL", "https://relay.example.com:443/rr/")]).unwrap();
        assert_eq!(
            c.public_base_url.as_str(),
            "https://relay.example.com:443/rr"
        );
        assert_eq!(
            c.public_base_url.join("/twilio/voice"),
            "https://relay.example.com:443/rr/twilio/voice"
        );
    }

    #[test]
    fn public_base_url_defaults_to_what_the_platform_says() {
        let fly = config(&[("FLY_APP_NAME", "my-relay")]).unwrap();
        assert_eq!(fly.public_base_url.as_str(), "https://my-relay.fly.dev");
        let heroku = config(&[(
            "HEROKU_APP_DEFAULT_DOMAIN_NAME",
            "my-relay-1234.herokuapp.com",
        )])
        .unwrap();
        assert_eq!(
            heroku.public_base_url.as_str(),
            "https://my-relay-1234.herokuapp.com"
        );
        let explicit = config(&[
            ("FLY_APP_NAME", "my-relay"),
            ("PUBLIC_BASE_URL", "https://calls.example.com"),
        ])
        .unwrap();
        assert_eq!(
            explicit.public_base_url.as_str(),
            "https://calls.example.com"
        );
    }

    #[test]
    fn hosts_and_safety_switches_parse() {
        let c = config(&[
            ("HOST", "::"),
            ("ALLOW_PRIVATE_WEBHOOKS", "true"),
            ("TRUST_PROXY", "yes"),
            ("MAX_STREAMS", "5"),
        ])
        .unwrap();
        assert_eq!(c.webhook_targets, TargetPolicy::AllowPrivate);
        assert!(c.trust_proxy);
        assert_eq!((c.max_streams, c.max_streams_per_destination), (5, 8));
        let d = config(&[("HOST", "my-host.internal")]).unwrap();
        assert_eq!(d.webhook_targets, TargetPolicy::PublicOnly);
        assert!(!d.trust_proxy);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[("ADMIN_TOKEN", ""), ("PORT", "")]).unwrap();
        assert!(c.admin_token.is_none());
        assert_eq!(c.port, 8080);
    }

    #[test]
    fn each_bad_variable_is_named_in_the_error() {
        let cases: &[(&str, &str, &str)] = &[
            ("PORT", "eighty", "whole number"),
            ("PORT", "70000", "whole number"),
            ("PORT", "-1", "whole number"),
            ("SESSION_TTL_SECS", "0", "greater than 0"),
            ("FORWARD_TIMEOUT_SECS", "0", "greater than 0"),
            ("FORWARD_TIMEOUT_SECS", "601", "at most 600"),
            ("SESSION_TTL_SECS", "-5", "greater than 0"),
            ("SESSION_TTL_SECS", "2m", "greater than 0"),
            ("HISTORY_TTL_SECS", "0", "greater than 0"),
            ("HISTORY_TTL_SECS", "2592001", "at most 2592000"),
            ("NOTIFY_TIMEOUT_MS", "0", "greater than 0"),
            ("NOTIFY_TIMEOUT_MS", "-100", "greater than 0"),
            ("PUBLIC_BASE_URL", "relay.example.com", "absolute URL"),
            ("PUBLIC_BASE_URL", "ftp://relay.example.com", "http://"),
            ("PUBLIC_BASE_URL", "https://relay.example.com/?a=b", "query"),
            ("WEBHOOK_SECRET", "not-a-secret", "whsec_"),
            ("WEBHOOK_SECRET", "whsec_!!!notbase64", "base64"),
            ("WEBHOOK_SECRET", "whsec_c2hvcnQ=", "16 bytes"),
            ("REDIS_URL", "postgres://localhost/db", "redis://"),
            ("REDIS_URL", "not a url", "redis://"),
            ("DEFAULT_REGION", "ZZ", "region"),
            ("LOG_FORMAT", "yaml", "text or json"),
            ("RUST_LOG", "info,[", "log filter"),
            ("REDIS_KEY_PREFIX", "two words", "spaces"),
            ("REDIS_KEY_PREFIX", "ring{relay}", "braces"),
            ("ADMIN_TOKEN", "a", "at least 16"),
            ("ADMIN_TOKEN", "fifteen-chars-x", "at least 16"),
            ("HOST", "999.1.1.1", "IP address"),
            ("HOST", "not a host", "IP address"),
            ("NOTIFY_TIMEOUT_MS", "99999999999", "at most 10000"),
            ("TEMPLATES_DIR", "/nowhere/at/all", "folder"),
            ("ALLOW_PRIVATE_WEBHOOKS", "sometimes", "true or false"),
            ("TRUST_PROXY", "2", "true or false"),
            ("MAX_STREAMS", "0", "greater than 0"),
            ("MAX_STREAMS_PER_DESTINATION", "many", "greater than 0"),
            ("VOICE_TOKEN_PROVIDER", "vonage", "one of twilio"),
            ("VOICE_TOKEN_TTL_SECS", "59", "60 to 86400"),
            ("VOICE_TOKEN_TTL_SECS", "86401", "60 to 86400"),
            ("TELNYX_API_BASE", "ftp://api.telnyx.com", "https://"),
            ("TWILIO_API_BASE", "not a url", "https://"),
            (
                "PLIVO_API_BASE",
                "https://user:pw@api.plivo.com",
                "https://",
            ),
            ("SIGNALWIRE_API_BASE", "not a url", "https://"),
            ("SIGNALWIRE_SPACE", "my.space", "letters, digits"),
            ("TWILIO_API_KEY_SID", "SK 123", "without spaces"),
            (
                "VAPID_SUBJECT",
                "mailto:ops@example.com",
                "only used with VAPID_PRIVATE_KEY",
            ),
        ];
        for (variable, value, expected) in cases {
            let err =
                config(&[(variable, value)]).expect_err(&format!("{variable}={value} should fail"));
            assert_eq!(&err.variable, variable, "{variable}={value}");
            assert!(
                err.to_string().starts_with(&format!("{variable}: "))
                    && err.problem.contains(expected),
                "{variable}={value}: {err}"
            );
        }
    }

    #[test]
    fn a_vapid_key_that_is_no_p256_key_stops_the_start_naming_it() {
        const KEY: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
        for (vars, variable, expected) in [
            (
                vec![("VAPID_PRIVATE_KEY", "c2hvcnQ")],
                "VAPID_SUBJECT",
                "must be set",
            ),
            (
                vec![
                    ("VAPID_PRIVATE_KEY", "c2hvcnQ"),
                    ("VAPID_SUBJECT", "mailto:a@b.c"),
                ],
                "VAPID_PRIVATE_KEY",
                "32 bytes",
            ),
            (
                vec![
                    ("VAPID_PRIVATE_KEY", KEY),
                    ("VAPID_SUBJECT", "ops@example.com"),
                ],
                "VAPID_SUBJECT",
                "mailto:",
            ),
        ] {
            let err = config(&vars).unwrap_err();
            assert_eq!(err.variable, variable, "{vars:?}");
            assert!(err.problem.contains(expected), "{err}");
            assert!(!err.to_string().contains(KEY), "{err}");
        }
        let c = config(&[
            ("VAPID_PRIVATE_KEY", KEY),
            ("VAPID_SUBJECT", "mailto:a@b.c"),
        ])
        .unwrap();
        assert!(c.vapid.is_some());
        assert!(!format!("{c:?}").contains(KEY));
    }

    #[test]
    fn secrets_never_print() {
        let c = config(&[
            ("ADMIN_TOKEN", "admin-s3cret-value"),
            ("TWILIO_AUTH_TOKEN", "twilio-s3cret-value"),
            ("PLIVO_AUTH_TOKEN", "plivo-s3cret-value"),
            ("REDIS_URL", "redis://:redis-s3cret-value@localhost:6379"),
            ("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("TWILIO_API_KEY_SECRET", "twilio-key-s3cret-value"),
            ("TELNYX_API_KEY", "KEYs3cret-value"),
            ("SIGNALWIRE_API_TOKEN", "PTs3cret-value"),
        ])
        .unwrap();
        let printed = format!("{c:?}");
        for secret in ["s3cret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    #[test]
    fn a_bad_redis_url_is_reported_without_its_password() {
        let err = config(&[("REDIS_URL", "mysql://:hunter2hunter2@db")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    fn urls(secrets: &[SecretString]) -> Vec<&str> {
        secrets.iter().map(|s| s.expose_secret()).collect()
    }

    #[test]
    fn redis_url_is_a_standalone_target() {
        let c = config(&[("REDIS_URL", "rediss://:pw@redis.example.com:6380#insecure")]).unwrap();
        let Some(RedisTarget::Standalone(url)) = &c.redis else {
            panic!("{:?}", c.redis)
        };
        assert_eq!(
            url.expose_secret(),
            "rediss://:pw@redis.example.com:6380#insecure"
        );
    }

    #[test]
    fn cluster_urls_are_the_seed_nodes_in_order() {
        let c = config(&[(
            "REDIS_CLUSTER_URLS",
            " rediss://a.example.com:7000, rediss://b.example.com:7001#insecure ,",
        )])
        .unwrap();
        let Some(RedisTarget::Cluster(seeds)) = &c.redis else {
            panic!("{:?}", c.redis)
        };
        assert_eq!(
            urls(seeds),
            [
                "rediss://a.example.com:7000",
                "rediss://b.example.com:7001#insecure"
            ]
        );
    }

    #[test]
    fn sentinel_urls_take_bare_addresses_and_need_the_master() {
        let c = config(&[
            (
                "REDIS_SENTINEL_URLS",
                "10.0.0.1:26379,redis://:pw@10.0.0.2:26379",
            ),
            ("REDIS_SENTINEL_MASTER", "mymaster"),
        ])
        .unwrap();
        let Some(RedisTarget::Sentinel { sentinels, master }) = &c.redis else {
            panic!("{:?}", c.redis)
        };
        assert_eq!(
            urls(sentinels),
            ["redis://10.0.0.1:26379", "redis://:pw@10.0.0.2:26379"]
        );
        assert_eq!(master, "mymaster");
        let tls = config(&[
            (
                "REDIS_SENTINEL_URLS",
                "rediss://s.example.com:26380#insecure",
            ),
            ("REDIS_SENTINEL_MASTER", "mymaster"),
        ])
        .unwrap();
        assert!(matches!(tls.redis, Some(RedisTarget::Sentinel { .. })));

        let err = config(&[("REDIS_SENTINEL_URLS", "10.0.0.1:26379")]).unwrap_err();
        assert_eq!(err.variable, "REDIS_SENTINEL_MASTER", "{err}");
        let err = config(&[("REDIS_SENTINEL_MASTER", "mymaster")]).unwrap_err();
        assert_eq!(err.variable, "REDIS_SENTINEL_MASTER", "{err}");
        assert!(err.problem.contains("REDIS_SENTINEL_URLS"), "{err}");
        let err = config(&[
            ("REDIS_SENTINEL_URLS", "10.0.0.1:26379"),
            ("REDIS_SENTINEL_MASTER", "my master"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "REDIS_SENTINEL_MASTER", "{err}");
    }

    #[test]
    fn two_redis_variables_fail_naming_both() {
        let url = ("REDIS_URL", "redis://localhost:6379");
        let cluster = ("REDIS_CLUSTER_URLS", "redis://localhost:7000");
        let sentinel = ("REDIS_SENTINEL_URLS", "localhost:26379");
        let master = ("REDIS_SENTINEL_MASTER", "mymaster");
        for vars in [
            vec![url, cluster],
            vec![url, sentinel, master],
            vec![cluster, sentinel, master],
            vec![url, cluster, sentinel, master],
        ] {
            let err = config(&vars).unwrap_err();
            let named: Vec<&str> = [url.0, cluster.0, sentinel.0]
                .into_iter()
                .filter(|name| err.to_string().contains(name))
                .collect();
            assert!(named.len() >= 2, "{vars:?}: {err}");
            assert!(err.problem.contains("only one"), "{err}");
        }
    }

    #[test]
    fn bad_cluster_and_sentinel_lists_are_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("REDIS_CLUSTER_URLS", ",,", "at least one"),
            (
                "REDIS_CLUSTER_URLS",
                "redis://a:7000,postgres://b",
                "entry 2",
            ),
            ("REDIS_CLUSTER_URLS", "a:7000", "entry 1"),
            (
                "REDIS_CLUSTER_URLS",
                "redis://a:7000,rediss://b:7001",
                "all redis:// or all rediss://",
            ),
            ("REDIS_SENTINEL_URLS", " , ", "at least one"),
            ("REDIS_SENTINEL_URLS", "not an address", "entry 1"),
        ];
        for (variable, value, expected) in cases {
            let mut vars = vec![(*variable, *value)];
            if *variable == "REDIS_SENTINEL_URLS" {
                vars.push(("REDIS_SENTINEL_MASTER", "m"));
            }
            let err = config(&vars).expect_err(&format!("{variable}={value} should fail"));
            assert_eq!(&err.variable, variable, "{variable}={value}: {err}");
            assert!(err.problem.contains(expected), "{variable}={value}: {err}");
        }
    }

    #[test]
    fn cluster_and_sentinel_passwords_never_print() {
        for vars in [
            vec![(
                "REDIS_CLUSTER_URLS",
                "redis://:hunter2hunter2@a:7000,mysql://:hunter2hunter2@b",
            )],
            vec![("REDIS_CLUSTER_URLS", "redis://:hunter2hunter2@a:7000")],
            vec![
                ("REDIS_SENTINEL_URLS", "redis://:hunter2hunter2@a:26379"),
                ("REDIS_SENTINEL_MASTER", "mymaster"),
            ],
        ] {
            let printed = match config(&vars) {
                Ok(c) => format!("{c:?}"),
                Err(err) => err.to_string(),
            };
            assert!(!printed.contains("hunter2"), "{printed}");
        }
    }
}
