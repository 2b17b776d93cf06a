//! The subscriber registry: registering, replacing and removing subscribers
//! with their tokens, telling whom a bearer token belongs to, and loading
//! `SUBSCRIBERS_FILE` at start. The admin API and the file share this path.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use serde::{Deserialize, Serialize};

use crate::domain::credentials::{
    Credentials, IssuedTokens, NewToken, TokenHash, TokenOwner, TokenPolicy,
};
use crate::domain::error::FieldError;
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::{SpecRules, Subscriber, SubscriberSpec, Target};
use crate::domain::time::Timestamp;
use crate::store::{Store, StoreError, SubscriberRecord, WindowCount};
use crate::subscriber_cache::SubscriberCache;

#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    rules: SpecRules,
    subscribers: Arc<SubscriberCache>,
}

/// The outcome of a registration.
pub struct Registration {
    pub subscriber: Subscriber,
    /// False when an existing subscriber was replaced.
    pub created: bool,
    /// Tokens made by this registration, shown once.
    pub tokens: IssuedTokens,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, rules: SpecRules, subscribers: Arc<SubscriberCache>) -> Self {
        Self {
            store,
            rules,
            subscribers,
        }
    }

    /// Creates or replaces the subscriber `number` from `spec`.
    pub async fn register(
        &self,
        number: PhoneNumber,
        spec: SubscriberSpec,
        policy: TokenPolicy,
    ) -> Result<Registration, RegistryError> {
        let mut subscriber = spec.parse(number, self.rules)?;
        let previous = self.store.subscriber(&subscriber.number).await?;
        softphone_addresses_are_plain(&subscriber, previous.as_ref().map(|p| &p.subscriber))?;
        // Do-not-disturb is the device's to set, not the admin's body's.
        subscriber.dnd_until = previous.as_ref().and_then(|p| p.subscriber.dnd_until);
        let (credentials, tokens) = Credentials::issue(
            &subscriber,
            previous.as_ref().map(|p| &p.credentials),
            policy,
        );
        let record = SubscriberRecord {
            subscriber,
            credentials,
        };
        let replaced = self.store.put_subscriber(&record).await?;
        self.subscribers.written(&record.subscriber).await;
        Ok(Registration {
            subscriber: record.subscriber,
            created: !replaced,
            tokens,
        })
    }

    pub async fn subscriber(&self, number: &PhoneNumber) -> Result<Option<Subscriber>, StoreError> {
        Ok(self.store.subscriber(number).await?.map(|r| r.subscriber))
    }

    /// Up to `limit` subscribers after `after`, in number order.
    pub async fn list(
        &self,
        after: Option<&PhoneNumber>,
        limit: usize,
    ) -> Result<Vec<Subscriber>, StoreError> {
        Ok(self
            .store
            .list_subscribers(after, limit)
            .await?
            .into_iter()
            .map(|r| r.subscriber)
            .collect())
    }

    /// Sets (or with `None` ends) the do-not-disturb of subscriber `number`;
    /// `None` when there is no such subscriber.
    pub async fn set_dnd(
        &self,
        number: &PhoneNumber,
        until: Option<Timestamp>,
    ) -> Result<Option<Subscriber>, StoreError> {
        let Some(mut record) = self.store.subscriber(number).await? else {
            return Ok(None);
        };
        record.subscriber.dnd_until = until;
        self.store.put_subscriber(&record).await?;
        self.subscribers.written(&record.subscriber).await;
        Ok(Some(record.subscriber))
    }

    /// Removes a subscriber. Returns whether it existed.
    pub async fn remove(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        let removed = self.store.delete_subscriber(number).await?;
        self.subscribers.removed(number).await;
        Ok(removed)
    }

    /// Answers when the store answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    /// Counts one failed credential check by `client` in a window of
    /// `window`, shared by every instance on the store.
    pub async fn count_failed_check(
        &self,
        client: std::net::IpAddr,
        window: std::time::Duration,
    ) -> Result<WindowCount, StoreError> {
        self.store.hit(&format!("guess:{client}"), window).await
    }

    /// Whom `token` belongs to, with the owner's subscriber; `None` for an
    /// unknown, rotated or removed token.
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<(TokenOwner, Subscriber)>, StoreError> {
        let presented = TokenHash::of(token);
        let Some(owner) = self.store.token_owner(&presented).await? else {
            return Ok(None);
        };
        let Some(record) = self.store.subscriber(owner.subscriber()).await? else {
            return Ok(None);
        };
        Ok(record
            .credentials
            .authenticates(&owner, &presented)
            .then_some((owner, record.subscriber)))
    }

    /// Upserts every subscriber of `SUBSCRIBERS_FILE`. Tokens the file sets
    /// replace the stored ones; the others are kept, or made for new
    /// subscribers (and obtained later with `?rotate_tokens=true`).
    pub async fn load_file(&self, path: &Path) -> anyhow::Result<usize> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let entries = parse_subscribers_file(path, &text)?;
        let count = entries.len();
        for (i, entry) in entries.into_iter().enumerate() {
            let at = format!("subscribers[{i}]");
            let number = PhoneNumber::parse(&entry.number, self.rules.region)
                .map_err(|e| anyhow!("{at}.number: {e}: {:?}", entry.number))?;
            let policy = entry.token_policy().map_err(|m| anyhow!("{at}.{m}"))?;
            self.register(number, entry.spec, policy)
                .await
                .map_err(|e| match e {
                    RegistryError::Invalid(field) => anyhow!("{at}.{field}"),
                    RegistryError::Store(store) => {
                        anyhow::Error::new(store).context(format!("storing {at}"))
                    }
                })?;
        }
        Ok(count)
    }
}

/// A `client` address takes only letters, digits and `_` (contract §18:
/// Twilio's mobile SDKs and Plivo endpoints accept no other characters),
/// unless the subscriber already had it: stored addresses keep working.
fn softphone_addresses_are_plain(
    subscriber: &Subscriber,
    previous: Option<&Subscriber>,
) -> Result<(), FieldError> {
    let address = |d: &crate::domain::subscriber::Destination| match &d.target {
        Target::Client(identity) => Some(identity.as_str().to_owned()),
        _ => None,
    };
    let kept: Vec<String> = previous
        .into_iter()
        .flat_map(|p| p.destinations.iter().filter_map(address))
        .collect();
    for (i, destination) in subscriber.destinations.iter().enumerate() {
        let Some(address) = address(destination) else {
            continue;
        };
        let plain = address
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain && !kept.contains(&address) {
            return Err(FieldError::new(
                format!("destinations[{i}].address"),
                format!(
                    "a client address takes letters, digits and '_' only (softphone SDKs accept no other), got {address:?}"
                ),
            ));
        }
    }
    Ok(())
}

/// One entry of `SUBSCRIBERS_FILE`: the PUT body plus the number and
/// optional fixed tokens.
#[derive(Serialize, Deserialize)]
struct FileEntry {
    number: String,
    device_token: Option<String>,
    #[serde(default)]
    destination_tokens: BTreeMap<String, String>,
    #[serde(flatten)]
    spec: SubscriberSpec,
}

/// Tokens chosen by an operator must be long enough not to be guessed.
const MIN_CHOSEN_TOKEN_LEN: usize = 16;

impl FileEntry {
    fn token_policy(&self) -> Result<TokenPolicy, String> {
        let chosen = |field: String, token: &str| {
            if token.len() < MIN_CHOSEN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
                Err(format!(
                    "{field}: must be at least {MIN_CHOSEN_TOKEN_LEN} characters without spaces"
                ))
            } else {
                Ok(NewToken::chosen(token.to_owned()))
            }
        };
        let device = self
            .device_token
            .as_deref()
            .map(|t| chosen("device_token".into(), t))
            .transpose()?;
        let mut destinations = BTreeMap::new();
        for (id, token) in &self.destination_tokens {
            let field = format!("destination_tokens.{id}");
            let parsed = DestinationId::parse(id).map_err(|m| format!("{field}: {m}"))?;
            if !self.spec.destinations.iter().any(|d| d.id == *id) {
                return Err(format!("{field}: names no destination of this subscriber"));
            }
            destinations.insert(parsed, chosen(field, token)?);
        }
        Ok(TokenPolicy::Chosen {
            device,
            destinations,
        })
    }
}

/// A TOML file (by its `.toml` extension) holds `[[subscribers]]`; anything
/// else is read as a JSON array. Either way a field nobody reads is an
/// error naming it (`crate::input`), as in a request body.
fn parse_subscribers_file(path: &Path, text: &str) -> anyhow::Result<Vec<FileEntry>> {
    #[derive(Serialize, Deserialize)]
    struct File {
        #[serde(default)]
        subscribers: Vec<FileEntry>,
    }
    let is_toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    // Both formats as one tree, the JSON array under `subscribers` as in
    // TOML, so that errors name `subscribers[i]…` either way.
    let input: serde_json::Value = if is_toml {
        toml::from_str(text).map_err(|e| anyhow!("{}", e.to_string().replace('\n', " ")))?
    } else {
        let entries: serde_json::Value = serde_json::from_str(text).map_err(|e| anyhow!("{e}"))?;
        serde_json::json!({ "subscribers": entries })
    };
    let file: File = serde_path_to_error::deserialize(&input)
        .map_err(|e| anyhow!("{}: {}", e.path(), e.inner()))?;
    let understood = serde_json::to_value(&file)?;
    match crate::input::unknown_field(&input, &understood) {
        Some(unknown) => Err(anyhow!("{unknown}")),
        None => Ok(file.subscribers),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Region;
    use crate::store::MemoryStore;

    fn registry() -> Registry {
        Registry::new(
            Arc::new(MemoryStore::new()),
            SpecRules {
                region: Region::default(),
                webhooks_can_be_signed: false,
                webhook_targets: crate::domain::webhook_target::TargetPolicy::PublicOnly,
            },
            Arc::default(),
        )
    }

    fn number(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, Region::default()).unwrap()
    }

    fn spec(address: &str) -> SubscriberSpec {
        serde_json::from_value(serde_json::json!({
            "forwarding_number": "+12025550100",
            "destinations": [{"id": "desk", "kind": "phone", "address": address}]
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_token_stops_working_once_rotated() {
        let registry = registry();
        let first = registry
            .register(
                number("+12025550199"),
                spec("+12025550201"),
                TokenPolicy::KeepExisting,
            )
            .await
            .unwrap();
        let old = first.tokens.device.unwrap();
        assert!(registry.authenticate(old.reveal()).await.unwrap().is_some());

        let second = registry
            .register(
                number("+12025550199"),
                spec("+12025550201"),
                TokenPolicy::Rotate,
            )
            .await
            .unwrap();
        assert!(!second.created);
        assert!(registry.authenticate(old.reveal()).await.unwrap().is_none());
        let (owner, subscriber) = registry
            .authenticate(second.tokens.device.unwrap().reveal())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            owner,
            TokenOwner::Device {
                subscriber: number("+12025550199")
            }
        );
        assert_eq!(subscriber.number, number("+12025550199"));
    }

    #[tokio::test]
    async fn a_stored_client_address_outside_the_new_rule_keeps_working() {
        let store = Arc::new(MemoryStore::new());
        let registry = Registry::new(
            store.clone(),
            SpecRules {
                region: Region::default(),
                webhooks_can_be_signed: false,
                webhook_targets: crate::domain::webhook_target::TargetPolicy::PublicOnly,
            },
            Arc::default(),
        );
        let softphone = |address: &str| -> SubscriberSpec {
            serde_json::from_value(serde_json::json!({
                "forwarding_number": "+12025550100",
                "destinations": [{"id": "web", "kind": "client", "address": address}]
            }))
            .unwrap()
        };
        use crate::store::SubscriberStore as _;
        // Stored by a release before the rule.
        let subscriber = softphone("alice.smith")
            .parse(number("+12025550199"), registry.rules)
            .unwrap();
        let (credentials, _) = Credentials::issue(&subscriber, None, TokenPolicy::KeepExisting);
        store
            .put_subscriber(&SubscriberRecord {
                subscriber,
                credentials,
            })
            .await
            .unwrap();

        let replaced = registry
            .register(
                number("+12025550199"),
                softphone("alice.smith"),
                TokenPolicy::KeepExisting,
            )
            .await;
        assert!(replaced.is_ok(), "the stored address is kept");
        let Err(RegistryError::Invalid(refused)) = registry
            .register(
                number("+12025550199"),
                softphone("bob.smith"),
                TokenPolicy::KeepExisting,
            )
            .await
        else {
            panic!("a new dotted address is refused");
        };
        assert_eq!(refused.field, "destinations[0].address");
    }

    #[tokio::test]
    async fn a_file_loads_json_and_toml_with_chosen_tokens() {
        let dir = std::env::temp_dir().join(format!("ringrelay-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("subs.json");
        std::fs::write(
            &json,
            r#"[{"number": "2025550199", "forwarding_number": "+12025550100",
                 "device_token": "device-token-0123456789",
                 "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201"}]}]"#,
        )
        .unwrap();
        let toml = dir.join("subs.toml");
        std::fs::write(
            &toml,
            r#"
[[subscribers]]
number = "+12025550198"
forwarding_number = "+12025550100"
ring_timeout_secs = 30
destination_tokens = { laptop = "laptop-token-0123456789" }
destinations = [{ id = "laptop", kind = "client", address = "alice" }]
"#,
        )
        .unwrap();

        let registry = registry();
        assert_eq!(registry.load_file(&json).await.unwrap(), 1);
        assert_eq!(registry.load_file(&toml).await.unwrap(), 1);
        let (owner, _) = registry
            .authenticate("device-token-0123456789")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(owner.subscriber(), &number("+12025550199"));
        let (owner, subscriber) = registry
            .authenticate("laptop-token-0123456789")
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(owner, TokenOwner::Destination { .. }));
        assert_eq!(subscriber.ring_timeout_secs, 30);

        std::fs::write(
            &json,
            r#"[{"number": "+12025550199", "forwarding_number": "+12025550100",
                 "destinations": [{"id": "desk", "kind": "phone", "address": "oops"}]}]"#,
        )
        .unwrap();
        let err = registry.load_file(&json).await.unwrap_err().to_string();
        assert!(
            err.starts_with("subscribers[0].destinations[0].address:"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
