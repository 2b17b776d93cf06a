//! Every environment variable the service reads, declared once: its name,
//! its default, its format and what it means. Parsing reads variables only
//! through these declarations (a value is looked up by its [`Variable`], and
//! a literal default is parsed like a set value), the list of known names is
//! this table, and the tables of `docs/configuration.md` are generated from
//! it (a test keeps them equal).

/// One environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    /// Where the docs list it.
    pub group: Group,
    pub when_unset: WhenUnset,
    /// Its format and range, as the docs show them (Markdown).
    pub format: &'static str,
    /// What it does (Markdown).
    pub meaning: &'static str,
    /// Never printed, logged or echoed in an error.
    pub secret: bool,
}

/// What a variable is when it is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnset {
    /// Nothing: the feature it sets is off.
    Unset,
    /// This text, parsed as if it had been set.
    Value(&'static str),
    /// Worked out at start, as described.
    Derived(&'static str),
}

/// The sections of `docs/configuration.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Listening,
    Store,
    Credentials,
    Calls,
    Reach,
    Safety,
    Logs,
    Platform,
}

impl Group {
    pub const ALL: [Self; 8] = [
        Self::Listening,
        Self::Store,
        Self::Credentials,
        Self::Calls,
        Self::Reach,
        Self::Safety,
        Self::Logs,
        Self::Platform,
    ];

    /// Its name in the docs' generated-table markers.
    pub fn label(self) -> &'static str {
        match self {
            Self::Listening => "listening",
            Self::Store => "store",
            Self::Credentials => "credentials",
            Self::Calls => "calls",
            Self::Reach => "reach",
            Self::Safety => "safety",
            Self::Logs => "logs",
            Self::Platform => "platform",
        }
    }
}

const fn var(
    name: &'static str,
    group: Group,
    when_unset: WhenUnset,
    format: &'static str,
    meaning: &'static str,
) -> Variable {
    Variable {
        name,
        group,
        when_unset,
        format,
        meaning,
        secret: false,
    }
}

/// [`var`], for a secret.
const fn secret(
    name: &'static str,
    group: Group,
    when_unset: WhenUnset,
    format: &'static str,
    meaning: &'static str,
) -> Variable {
    Variable {
        secret: true,
        ..var(name, group, when_unset, format, meaning)
    }
}

use Group::*;
use WhenUnset::{Derived, Unset, Value};

pub const PORT: Variable = var(
    "PORT",
    Listening,
    Value("8080"),
    "whole number, 0 to 65535 (0 picks a free port)",
    "The port to listen on. Heroku and Fly set it.",
);
pub const HOST: Variable = var(
    "HOST",
    Listening,
    Value("0.0.0.0"),
    "an IP address (`::` for IPv6) or a host name",
    "The address to listen on.",
);
pub const PUBLIC_BASE_URL: Variable = var(
    "PUBLIC_BASE_URL",
    Listening,
    Derived("from the platform, else `http://localhost:$PORT`"),
    "absolute `http://` or `https://` URL, optional path prefix, no query, no user name; a trailing `/` is dropped",
    "The URL the CPaaS calls. Every provider signature that covers the URL (Twilio, Plivo, SignalWire) is checked against this value plus the path and query as received, so it must be exactly what you pasted into the provider's console. Unset, it is `https://$FLY_APP_NAME.fly.dev` on Fly.io and `https://$HEROKU_APP_DEFAULT_DOMAIN_NAME` on Heroku (see [Set by the platform](#set-by-the-platform)). The start log line `ringrelay listening` names the value in use.",
);
pub const TRUST_PROXY: Variable = var(
    "TRUST_PROXY",
    Listening,
    Value("false"),
    "`true` or `false` (also `1`/`0`, `yes`/`no`)",
    "Whether the client address comes from the platform's router: `Fly-Client-IP` when present, else the **last** entry of `X-Forwarded-For` (the one the router appended), else the socket peer. Never the first entry, which the client writes. Off, proxy headers are ignored and the client is the socket peer. Set it on Fly.io and Heroku, whose routers are every request's peer; never where clients reach the service directly. The address only feeds the [failed-credential limiter](operations.md#the-failed-credential-limiter).",
);

pub const REDIS_URL: Variable = secret(
    "REDIS_URL",
    Store,
    Unset,
    "`redis://` or `rediss://` (TLS) URL, with user name, password and database as Redis URLs take them",
    "One Redis server (it may hold a password). Unset (and no cluster or sentinels): the embedded in-memory store, one instance only.",
);
pub const REDIS_CLUSTER_URLS: Variable = secret(
    "REDIS_CLUSTER_URLS",
    Store,
    Unset,
    "comma-separated seed nodes, all `redis://` or all `rediss://`",
    "A Redis Cluster (or Valkey cluster) instead; the other nodes are found through the seeds.",
);
pub const REDIS_SENTINEL_URLS: Variable = secret(
    "REDIS_SENTINEL_URLS",
    Store,
    Unset,
    "comma-separated sentinels: `host:port` (read as `redis://host:port`) or `redis://` / `rediss://` URLs",
    "A Sentinel-managed primary instead. The user name, password, database and TLS of the first sentinel URL are used for the primary too. Needs `REDIS_SENTINEL_MASTER`.",
);
pub const REDIS_SENTINEL_MASTER: Variable = var(
    "REDIS_SENTINEL_MASTER",
    Store,
    Unset,
    "a name without spaces",
    "The primary's service name, as in the sentinels' `sentinel monitor <name> …`. Only with `REDIS_SENTINEL_URLS`.",
);
pub const REDIS_TLS_INSECURE: Variable = var(
    "REDIS_TLS_INSECURE",
    Store,
    Value("false"),
    "`true` or `false`",
    "`true`: `rediss://` connections (`REDIS_URL`, the cluster's seeds, the sentinels and their primary) accept the server's certificate without verifying it. The connection is still encrypted. For Heroku's Redis, whose certificates are self-signed (and whose URL Heroku rotates, so edit nothing in `REDIS_URL`). A refused certificate is logged, and reported in the store's errors, naming this variable. Appending `#insecure` to a URL does the same for that URL.",
);
pub const SUBSCRIBER_CACHE_ENTRIES: Variable = var(
    "SUBSCRIBER_CACHE_ENTRIES",
    Store,
    Value("50000"),
    "whole number greater than 0",
    "Subscribers one instance keeps in memory, the most recently used, plus as many short-lived (30 s) \"no such subscriber\" entries. A voice webhook for a cached subscriber reads no subscriber from Redis. About 2 KiB of memory each; see [operations.md](operations.md#inside-redis), \"The subscriber cache\".",
);
pub const REDIS_KEY_PREFIX: Variable = var(
    "REDIS_KEY_PREFIX",
    Store,
    Value("ringrelay"),
    "no spaces, control characters or braces",
    "The namespace of every key. Braces would make the prefix a Redis Cluster hash tag and put every key in one slot.",
);

pub const ADMIN_TOKEN: Variable = secret(
    "ADMIN_TOKEN",
    Credentials,
    Unset,
    "at least 16 characters; shorter stops the start",
    "The admin API's bearer token (`Authorization: Bearer …`). Unset: the admin API answers 503 `not_configured`. Make it with `openssl rand -hex 32`.",
);
pub const WEBHOOK_SECRET: Variable = secret(
    "WEBHOOK_SECRET",
    Credentials,
    Unset,
    "`whsec_` + base64 of at least 16 bytes; two, comma-separated, while [rotating](#two-values-for-rotation)",
    "Signs the webhooks sent to destinations (Standard Webhooks). Required as soon as a destination has a `webhook_url`: without it such a subscriber gets 422 naming `WEBHOOK_SECRET`.",
);
pub const TWILIO_AUTH_TOKEN: Variable = secret(
    "TWILIO_AUTH_TOKEN",
    Credentials,
    Unset,
    "the account's auth token; two, comma-separated, while rotating",
    "Checks `X-Twilio-Signature`. Unset: `/twilio/*` answer 503.",
);
pub const PLIVO_AUTH_TOKEN: Variable = secret(
    "PLIVO_AUTH_TOKEN",
    Credentials,
    Unset,
    "the account's auth token; two, comma-separated, while rotating",
    "Checks `X-Plivo-Signature-V3`. Unset: `/plivo/*` answer 503.",
);
pub const TELNYX_PUBLIC_KEY: Variable = var(
    "TELNYX_PUBLIC_KEY",
    Credentials,
    Unset,
    "base64 of a 32-byte Ed25519 public key; two, comma-separated, while rotating; anything else stops the start",
    "Telnyx's public key (not a secret, but set it as one anyway so it is managed with the others). Checks `telnyx-signature-ed25519`. Unset: `/telnyx/*` answer 503.",
);
pub const SIGNALWIRE_SIGNING_KEY: Variable = secret(
    "SIGNALWIRE_SIGNING_KEY",
    Credentials,
    Unset,
    "the project's Signing Key; two, comma-separated, while rotating",
    "Checks `X-SignalWire-Signature`. Unset: `/signalwire/*` answer 503.",
);
pub const SIGNALWIRE_SIP_DOMAIN: Variable = var(
    "SIGNALWIRE_SIP_DOMAIN",
    Credentials,
    Unset,
    "letters, digits and `-`, at most 63",
    "Your space's SIP domain (`example` in `example.verto.signalwire.com`). `client` destinations are dialed as `<Verto>identity@example.verto.signalwire.com</Verto>`; without it, as the bare identity.",
);
pub const TWILIO_ACCOUNT_SID: Variable = var(
    "TWILIO_ACCOUNT_SID",
    Credentials,
    Unset,
    "`AC` and 32 hexadecimal digits",
    "Your Twilio account's SID: the `sub` of the softphone access tokens `POST /v1/destinations/{id}/voice-token` signs, and the account missed-call texts are sent from (with `TWILIO_AUTH_TOKEN`).",
);
pub const TWILIO_API_KEY_SID: Variable = var(
    "TWILIO_API_KEY_SID",
    Credentials,
    Unset,
    "`SK` and 32 hexadecimal digits",
    "A Twilio API key (Console → API keys): the `iss` of the softphone access tokens. With `TWILIO_API_KEY_SECRET`.",
);
pub const TWILIO_API_KEY_SECRET: Variable = secret(
    "TWILIO_API_KEY_SECRET",
    Credentials,
    Unset,
    "the API key's secret",
    "Signs the softphone access tokens (HS256).",
);
pub const TWILIO_TWIML_APP_SID: Variable = var(
    "TWILIO_TWIML_APP_SID",
    Credentials,
    Unset,
    "`AP` and 32 hexadecimal digits",
    "A TwiML app for the softphone's outgoing calls (`grants.voice.outgoing.application_sid`). Unset: the tokens allow incoming calls only.",
);
pub const PLIVO_AUTH_ID: Variable = var(
    "PLIVO_AUTH_ID",
    Credentials,
    Unset,
    "your Plivo Auth ID (`MA…`)",
    "The `iss` of the endpoint tokens `POST /v1/destinations/{id}/voice-token` signs with `PLIVO_AUTH_TOKEN` (the current one), and the account missed-call texts are sent from.",
);
pub const TELNYX_API_KEY: Variable = secret(
    "TELNYX_API_KEY",
    Credentials,
    Unset,
    "a Telnyx API key (`KEY…`)",
    "Mints softphone tokens through Telnyx's API (`POST /v2/telephony_credentials/{client address}/token`) and sends missed-call texts (`POST /v2/messages`).",
);
pub const TWILIO_API_BASE: Variable = var(
    "TWILIO_API_BASE",
    Credentials,
    Value("https://api.twilio.com"),
    "absolute `https://` (or `http://`) URL",
    "Where Twilio's API is (tests point it at a local fake). Missed-call texts go through it, as `TWILIO_ACCOUNT_SID` with the current `TWILIO_AUTH_TOKEN`.",
);
pub const PLIVO_API_BASE: Variable = var(
    "PLIVO_API_BASE",
    Credentials,
    Value("https://api.plivo.com"),
    "absolute `https://` (or `http://`) URL",
    "Where Plivo's API is (tests point it at a local fake). Missed-call texts go through it, as `PLIVO_AUTH_ID` with the current `PLIVO_AUTH_TOKEN`.",
);
pub const TELNYX_API_BASE: Variable = var(
    "TELNYX_API_BASE",
    Credentials,
    Value("https://api.telnyx.com"),
    "absolute `https://` (or `http://`) URL",
    "Where Telnyx's API is (tests point it at a local fake).",
);
pub const SIGNALWIRE_PROJECT_ID: Variable = var(
    "SIGNALWIRE_PROJECT_ID",
    Credentials,
    Unset,
    "your SignalWire project's id (a UUID)",
    "With `SIGNALWIRE_API_TOKEN`: mints softphone JWTs through SignalWire's API (`POST /api/relay/rest/jwt`) and sends missed-call texts (the LaML `Messages.json`).",
);
pub const SIGNALWIRE_API_TOKEN: Variable = secret(
    "SIGNALWIRE_API_TOKEN",
    Credentials,
    Unset,
    "a SignalWire API token (`PT…`)",
    "The password of the project's basic auth on SignalWire's API.",
);
pub const SIGNALWIRE_SPACE: Variable = var(
    "SIGNALWIRE_SPACE",
    Credentials,
    Unset,
    "letters, digits and `-`, at most 63",
    "Your space's name (`example` in `example.signalwire.com`): where SignalWire's API is, unless `SIGNALWIRE_API_BASE` says otherwise.",
);
pub const SIGNALWIRE_API_BASE: Variable = var(
    "SIGNALWIRE_API_BASE",
    Credentials,
    Derived("`https://$SIGNALWIRE_SPACE.signalwire.com`"),
    "absolute `https://` (or `http://`) URL",
    "Where SignalWire's API is (tests point it at a local fake).",
);

pub const DEFAULT_REGION: Variable = var(
    "DEFAULT_REGION",
    Calls,
    Value("US"),
    "an ISO 3166 region code (`US`, `GB`, `DE`, …)",
    "The region in which national-format numbers (`(202) 555-0199`) are read, in paths, bodies and webhooks. Output is always E.164.",
);
pub const SESSION_TTL_SECS: Variable = var(
    "SESSION_TTL_SECS",
    Calls,
    Value("120"),
    "whole number greater than 0",
    "How long a session lives after its last change while it is open. It is at least `FORWARD_TIMEOUT_SECS` + 4 s, so that an expiry can be seen; a forwarded session gets 120 s more (the longest voicemail).",
);
pub const HISTORY_TTL_SECS: Variable = var(
    "HISTORY_TTL_SECS",
    Calls,
    Value("86400"),
    "1 to 2592000 (30 days)",
    "How long an ended session stays listed by `GET /v1/sessions` and readable by id; at most the last 200 per subscriber.",
);
pub const NOTIFY_TIMEOUT_MS: Variable = var(
    "NOTIFY_TIMEOUT_MS",
    Calls,
    Value("2000"),
    "1 to 10000",
    "How long each `call.ringing` webhook may take before the phone's instruction goes out anyway. The phone rings meanwhile, so keep it well under the carrier's no-reply timer.",
);
pub const FORWARD_TIMEOUT_SECS: Variable = var(
    "FORWARD_TIMEOUT_SECS",
    Calls,
    Value("30"),
    "1 to 600",
    "A session told `reject` that no forwarded call claims within this time ends `expired` (`call.missed`, `not_forwarded`): the carrier is not forwarding.",
);
pub const SUBSCRIBERS_FILE: Variable = var(
    "SUBSCRIBERS_FILE",
    Calls,
    Unset,
    "path to a `.toml` file, or a JSON file (any other name)",
    "Subscribers created or replaced at every start. See [below](#subscribers_file).",
);
pub const TEMPLATES_DIR: Variable = var(
    "TEMPLATES_DIR",
    Calls,
    Unset,
    "path to a folder that exists (else the start stops)",
    "A folder whose files replace the spoken texts. See [below](#templates_dir).",
);

pub const VAPID_PRIVATE_KEY: Variable = secret(
    "VAPID_PRIVATE_KEY",
    Reach,
    Unset,
    "base64url of the 32-byte P-256 private scalar ([how to make one](#web-push)); anything else stops the start",
    "Turns Web Push on (RFC 8030, 8291, 8292): events reach destinations' browsers with no tab open. Unset: the push routes answer 503 naming it. Needs `VAPID_SUBJECT`.",
);
pub const VAPID_SUBJECT: Variable = var(
    "VAPID_SUBJECT",
    Reach,
    Unset,
    "a `mailto:` or `https:` URL",
    "Who runs this service, for push services to contact (the `sub` of every push's VAPID token). Required with `VAPID_PRIVATE_KEY`.",
);
pub const VOICE_TOKEN_PROVIDER: Variable = var(
    "VOICE_TOKEN_PROVIDER",
    Reach,
    Derived("the only provider configured"),
    "`twilio`, `plivo`, `telnyx` or `signalwire`",
    "Whose softphone tokens `POST /v1/destinations/{id}/voice-token` issues. Needed when several providers are configured (else that route answers 503 naming it).",
);
pub const VOICE_TOKEN_TTL_SECS: Variable = var(
    "VOICE_TOKEN_TTL_SECS",
    Reach,
    Value("3600"),
    "60 to 86400",
    "How long a softphone token lasts (Telnyx's last 24 hours whatever this says; SignalWire's are whole minutes).",
);

pub const ALLOW_PRIVATE_WEBHOOKS: Variable = var(
    "ALLOW_PRIVATE_WEBHOOKS",
    Safety,
    Value("false"),
    "`true` or `false`",
    "`true` lets a `webhook_url` name a private, loopback, link-local or unique-local host (local development, a CRM on your own network, `ringrelay simulate --target`). Off, such URLs get 422, and a public name that resolves to such an address is refused when connecting. Cloud metadata addresses and URLs with a user name or password are refused either way.",
);
pub const MAX_STREAMS: Variable = var(
    "MAX_STREAMS",
    Safety,
    Value("10000"),
    "whole number greater than 0",
    "Live event streams (SSE) one instance keeps open, all routes together; past it, 429.",
);
pub const MAX_STREAMS_PER_DESTINATION: Variable = var(
    "MAX_STREAMS_PER_DESTINATION",
    Safety,
    Value("8"),
    "whole number greater than 0",
    "Live streams one destination may hold open on one instance; past it, 429. The admin's `/v1/events` counts only against `MAX_STREAMS`.",
);

pub const LOG_FORMAT: Variable = var(
    "LOG_FORMAT",
    Logs,
    Value("text"),
    "`text` or `json`",
    "`json` writes one JSON object a line (what log drains want). See [operations.md](operations.md#logs).",
);
pub const RUST_LOG: Variable = var(
    "RUST_LOG",
    Logs,
    Value("info"),
    "a `tracing` filter (`info`, `warn`, `ringrelay=debug,info`)",
    "Which log lines are written.",
);

pub const FLY_APP_NAME: Variable = var(
    "FLY_APP_NAME",
    Platform,
    Derived("set by Fly.io"),
    "the app's name",
    "`PUBLIC_BASE_URL` defaults to `https://<name>.fly.dev`.",
);
pub const HEROKU_APP_DEFAULT_DOMAIN_NAME: Variable = var(
    "HEROKU_APP_DEFAULT_DOMAIN_NAME",
    Platform,
    Derived("set by Heroku with the `runtime-dyno-metadata` labs feature"),
    "a host name",
    "`PUBLIC_BASE_URL` defaults to `https://<that name>`. Turn the feature on with `heroku labs:enable runtime-dyno-metadata`.",
);

/// Every variable, in the order the docs list them.
pub const ALL: &[Variable] = &[
    PORT,
    HOST,
    PUBLIC_BASE_URL,
    TRUST_PROXY,
    REDIS_URL,
    REDIS_CLUSTER_URLS,
    REDIS_SENTINEL_URLS,
    REDIS_SENTINEL_MASTER,
    REDIS_TLS_INSECURE,
    REDIS_KEY_PREFIX,
    SUBSCRIBER_CACHE_ENTRIES,
    ADMIN_TOKEN,
    WEBHOOK_SECRET,
    TWILIO_AUTH_TOKEN,
    PLIVO_AUTH_TOKEN,
    TELNYX_PUBLIC_KEY,
    SIGNALWIRE_SIGNING_KEY,
    SIGNALWIRE_SIP_DOMAIN,
    TWILIO_ACCOUNT_SID,
    TWILIO_API_KEY_SID,
    TWILIO_API_KEY_SECRET,
    TWILIO_TWIML_APP_SID,
    PLIVO_AUTH_ID,
    TELNYX_API_KEY,
    TWILIO_API_BASE,
    PLIVO_API_BASE,
    TELNYX_API_BASE,
    SIGNALWIRE_PROJECT_ID,
    SIGNALWIRE_API_TOKEN,
    SIGNALWIRE_SPACE,
    SIGNALWIRE_API_BASE,
    DEFAULT_REGION,
    SESSION_TTL_SECS,
    HISTORY_TTL_SECS,
    NOTIFY_TIMEOUT_MS,
    FORWARD_TIMEOUT_SECS,
    SUBSCRIBERS_FILE,
    TEMPLATES_DIR,
    VAPID_PRIVATE_KEY,
    VAPID_SUBJECT,
    VOICE_TOKEN_PROVIDER,
    VOICE_TOKEN_TTL_SECS,
    ALLOW_PRIVATE_WEBHOOKS,
    MAX_STREAMS,
    MAX_STREAMS_PER_DESTINATION,
    LOG_FORMAT,
    RUST_LOG,
    FLY_APP_NAME,
    HEROKU_APP_DEFAULT_DOMAIN_NAME,
];

/// The variable called `name`, if the service reads one.
pub fn named(name: &str) -> Option<&'static Variable> {
    ALL.iter().find(|v| v.name == name)
}

/// The Markdown table of one group, as `docs/configuration.md` shows it.
pub fn markdown_table(group: Group) -> String {
    let mut table =
        String::from("| variable | default | format and range | meaning |\n|---|---|---|---|\n");
    for variable in ALL.iter().filter(|v| v.group == group) {
        let default = match variable.when_unset {
            Unset => "unset".to_owned(),
            Value(value) => format!("`{value}`"),
            Derived(description) => description.to_owned(),
        };
        let secret = if variable.secret { "**secret**. " } else { "" };
        table.push_str(&format!(
            "| `{}` | {default} | {} | {secret}{} |\n",
            variable.name, variable.format, variable.meaning
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_spelled_as_environment_variables() {
        for (i, variable) in ALL.iter().enumerate() {
            assert!(
                variable
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                variable.name
            );
            assert!(
                ALL[i + 1..].iter().all(|other| other.name != variable.name),
                "{} is declared twice",
                variable.name
            );
        }
    }

    #[test]
    fn every_group_has_variables_and_they_are_listed_together() {
        let groups: Vec<Group> = ALL.iter().map(|v| v.group).collect();
        let mut seen = Vec::new();
        for group in groups {
            if seen.last() != Some(&group) {
                assert!(!seen.contains(&group), "{group:?} is listed in two places");
                seen.push(group);
            }
        }
        assert_eq!(seen, Group::ALL);
    }

    #[test]
    fn every_providers_variable_is_declared_here() {
        for name in crate::providers::PROVIDERS.iter().flat_map(|p| p.variables) {
            assert!(
                named(name).is_some(),
                "{name} is read by its provider but not declared"
            );
        }
    }

    #[test]
    fn the_example_environment_lists_every_variable_the_user_sets() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.env.example");
        let example = std::fs::read_to_string(path).expect(".env.example");
        for variable in ALL.iter().filter(|v| v.group != Group::Platform) {
            assert!(
                example.lines().any(|line| {
                    let line = line.trim_start_matches("# ");
                    line.starts_with(&format!("{}=", variable.name))
                }),
                ".env.example does not list {}",
                variable.name
            );
        }
    }

    /// `docs/configuration.md` holds each group's table between markers;
    /// `RINGRELAY_BLESS=1 cargo test -p ringrelay-server --lib config`
    /// writes them anew from this table.
    #[test]
    fn the_configuration_doc_shows_this_table() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let doc = std::fs::read_to_string(&path).expect("docs/configuration.md");
        let mut expected = doc.clone();
        for group in Group::ALL {
            let start = format!("<!-- generated: variables {} -->\n", group.label());
            let end = "<!-- end of generated -->";
            let from = expected
                .find(&start)
                .unwrap_or_else(|| panic!("docs/configuration.md has no {start:?}"))
                + start.len();
            let to = from
                + expected[from..]
                    .find(end)
                    .unwrap_or_else(|| panic!("{start:?} is not closed by {end:?}"));
            expected.replace_range(from..to, &markdown_table(group));
        }
        if std::env::var_os("RINGRELAY_BLESS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        } else {
            assert!(
                doc == expected,
                "docs/configuration.md differs from config::variables; run \
                 RINGRELAY_BLESS=1 cargo test -p ringrelay-server --lib config"
            );
        }
    }
}
