//! The subscriber registry: registering, replacing and removing subscribers
//! with their tokens, telling whom a bearer token belongs to, and loading
//! `SUBSCRIBERS_FILE` at start. The admin API and the file share this path.

use std::sync::Arc;

use super::Subscribers;
use crate::domain::credentials::{Credentials, IssuedTokens, TokenHash, TokenOwner, TokenPolicy};
use crate::domain::error::FieldError;
use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::{SpecRules, Subscriber, SubscriberSpec, Target};
use crate::domain::time::Timestamp;
use crate::store::{Store, StoreError, SubscriberRecord, WindowCount};

#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    rules: SpecRules,
    subscribers: Arc<Subscribers>,
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
    pub fn new(subscribers: Arc<Subscribers>, rules: SpecRules) -> Self {
        Self {
            store: subscribers.store().clone(),
            rules,
            subscribers,
        }
    }

    pub fn rules(&self) -> SpecRules {
        self.rules
    }

    pub(super) fn subscribers(&self) -> &Arc<Subscribers> {
        &self.subscribers
    }

    /// How the import of `SUBSCRIBERS_FILE` is going, when there is one.
    pub fn import_status(&self) -> Option<super::import::ImportStatus> {
        self.subscribers.import_status()
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
        self.subscribers
            .written(
                &record.subscriber,
                previous.as_ref().map(|p| &p.subscriber.forwarding_number),
            )
            .await;
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
        self.subscribers.written(&record.subscriber, None).await;
        Ok(Some(record.subscriber))
    }

    /// Removes a subscriber. Returns whether it existed.
    pub async fn remove(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        let forwarding = self
            .store
            .subscriber(number)
            .await?
            .map(|r| r.subscriber.forwarding_number);
        let removed = self.store.delete_subscriber(number).await?;
        self.subscribers.removed(number, forwarding.as_ref()).await;
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
        let Some((owner, record)) = self.store.token_subscriber(&presented).await? else {
            return Ok(None);
        };
        Ok(record
            .credentials
            .authenticates(&owner, &presented)
            .then_some((owner, record.subscriber)))
    }
}

/// A `client` address takes only letters, digits and `_` (docs/api.md:
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Region;
    use crate::store::MemoryStore;

    fn registry() -> Registry {
        Registry::new(
            Arc::new(Subscribers::new(
                Arc::new(MemoryStore::new()),
                crate::notify::bus::EventBus::in_process(),
                Arc::default(),
                10,
            )),
            SpecRules {
                region: Region::default(),
                webhooks_can_be_signed: false,
                webhook_targets: crate::domain::webhook_target::TargetPolicy::PublicOnly,
            },
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
        assert_eq!(
            registry.import(&json).unwrap().done.await.unwrap().unwrap(),
            1
        );
        assert_eq!(
            registry.import(&toml).unwrap().done.await.unwrap().unwrap(),
            1
        );
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
        let err = registry
            .import(&json)
            .unwrap()
            .done
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("subscribers[0].destinations[0].address:"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_stored_client_address_outside_the_new_rule_keeps_working() {
        use crate::store::SubscriberStore as _;
        let store = Arc::new(MemoryStore::new());
        let registry = Registry::new(
            Arc::new(Subscribers::new(
                store.clone(),
                crate::notify::bus::EventBus::in_process(),
                Arc::default(),
                10,
            )),
            SpecRules {
                region: Region::default(),
                webhooks_can_be_signed: false,
                webhook_targets: crate::domain::webhook_target::TargetPolicy::PublicOnly,
            },
        );
        let softphone = |address: &str| -> SubscriberSpec {
            serde_json::from_value(serde_json::json!({
                "forwarding_number": "+12025550100",
                "destinations": [{"id": "web", "kind": "client", "address": address}]
            }))
            .unwrap()
        };
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
}
