//! Subscribers in Redis: the record, the forwarding-number index, the
//! token keys and the listing index, written key after key (see `mod.rs`).

use anyhow::Context as _;
use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::AsyncCommands as _;

use super::scripts::{SWAP_SUBSCRIBER, TAKE_SUBSCRIBER};
use super::{RedisStore, decode};
use crate::domain::credentials::{TokenHash, TokenOwner};
use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::DestinationId;
use crate::store::{ForwardedCallSubscribers, StoreError, SubscriberRecord, SubscriberStore};

#[async_trait]
impl SubscriberStore for RedisStore {
    async fn put_subscriber(&self, record: &SubscriberRecord) -> Result<bool, StoreError> {
        let subscriber = &record.subscriber;
        let json = serde_json::to_string(record).context("encoding a subscriber")?;
        let owners: Vec<(String, String)> = record
            .credentials
            .owners(&subscriber.number)
            .map(|(hash, owner)| (hash.to_hex(), encode_owner(&owner)))
            .collect();
        let hashes = owners
            .iter()
            .map(|(h, _)| h.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        // New tokens first: no reader trusts a token key without the record.
        try_join_all(owners.iter().map(|(hash, owner)| async move {
            self.conn()
                .set::<_, _, ()>(self.keys.token(hash), owner)
                .await
                .map_err(self.failed("writing a subscriber's tokens"))
        }))
        .await?;
        let replaced: Vec<String> = SWAP_SUBSCRIBER
            .key(self.keys.subscriber(&subscriber.number))
            .arg(json)
            .arg(subscriber.forwarding_number.as_str())
            .arg(&hashes)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("writing a subscriber"))?;
        let mut conn = self.conn();
        conn.sadd::<_, _, ()>(
            self.keys.forwarding(&subscriber.forwarding_number),
            subscriber.number.as_str(),
        )
        .await
        .map_err(self.failed("indexing a subscriber"))?;
        conn.zadd::<_, _, _, ()>(self.keys.subscribers(), subscriber.number.as_str(), 0)
            .await
            .map_err(self.failed("indexing a subscriber"))?;
        let Some((old_forwarding, old_hashes)) = replaced.split_first() else {
            return Ok(false);
        };
        if *old_forwarding != subscriber.forwarding_number.as_str() {
            conn.srem::<_, _, ()>(
                self.keys.plain("fwd", old_forwarding),
                subscriber.number.as_str(),
            )
            .await
            .map_err(self.failed("indexing a subscriber"))?;
        }
        let kept: Vec<&str> = hashes.split(' ').collect();
        let gone = old_hashes
            .iter()
            .flat_map(|h| h.split(' '))
            .filter(|h| !h.is_empty() && !kept.contains(h));
        try_join_all(gone.map(|hash| async move {
            self.conn()
                .del::<_, ()>(self.keys.token(hash))
                .await
                .map_err(self.failed("removing a subscriber's old tokens"))
        }))
        .await?;
        Ok(true)
    }

    async fn put_subscribers(&self, records: &[SubscriberRecord]) -> Result<(), StoreError> {
        // Each as one write, all at once: the commands share the connection
        // (to each node), so the batch takes the round trips of one write.
        try_join_all(records.iter().map(|record| self.put_subscriber(record))).await?;
        Ok(())
    }

    async fn subscribers(
        &self,
        numbers: &[PhoneNumber],
    ) -> Result<Vec<Option<SubscriberRecord>>, StoreError> {
        try_join_all(numbers.iter().map(|number| self.subscriber(number))).await
    }

    async fn subscriber(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        let json: Option<String> = self
            .conn()
            .hget(self.keys.subscriber(number), "record")
            .await
            .map_err(self.failed("reading a subscriber"))?;
        json.map(|j| decode(&j, "subscriber")).transpose()
    }

    async fn some_subscribers(&self, limit: usize) -> Result<Vec<SubscriberRecord>, StoreError> {
        self.list_subscribers(None, limit).await
    }

    async fn list_subscribers(
        &self,
        after: Option<&PhoneNumber>,
        limit: usize,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let mut out = Vec::new();
        let mut from = after.map_or_else(|| "-".to_owned(), |n| format!("({n}"));
        while out.len() < limit {
            let want = limit - out.len();
            let numbers: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(self.keys.subscribers())
                .arg(&from)
                .arg("+")
                .arg("LIMIT")
                .arg(0)
                .arg(want)
                .query_async(&mut self.conn())
                .await
                .map_err(self.failed("listing subscribers"))?;
            let Some(last) = numbers.last() else { break };
            from = format!("({last}");
            let records = self.records(&numbers).await?;
            // An entry without a record (left by indexing at start while
            // the subscriber was deleted) is dropped.
            let dangling: Vec<&String> = numbers
                .iter()
                .filter(|n| !records.iter().any(|r| r.subscriber.number.as_str() == *n))
                .collect();
            if !dangling.is_empty() {
                self.conn()
                    .zrem::<_, _, ()>(self.keys.subscribers(), dangling)
                    .await
                    .map_err(self.failed("listing subscribers"))?;
            }
            out.extend(records);
        }
        Ok(out)
    }

    async fn index_subscribers(&self) -> Result<usize, StoreError> {
        // Subscribers older than the index were written by a release that
        // could not run on a cluster: there is nothing to index there (and
        // a SCAN would walk one node at random).
        if self.connection.is_cluster() {
            return Ok(0);
        }
        // SCAN, not KEYS: it never blocks Redis for long, whatever the count.
        let pattern = format!("{}:sub:*", glob_escaped(&self.keys.prefix));
        let prefix = format!("{}:sub:", self.keys.prefix);
        let mut seen = 0;
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn())
                .await
                .map_err(self.failed("indexing subscribers"))?;
            let numbers: Vec<&str> = batch
                .iter()
                .filter_map(|key| key.strip_prefix(&prefix))
                .collect();
            if !numbers.is_empty() {
                // A subscriber deleted meanwhile leaves an entry without a
                // record, which listing skips.
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(self.keys.subscribers());
                for number in &numbers {
                    zadd.arg(0).arg(*number);
                }
                zadd.query_async::<()>(&mut self.conn())
                    .await
                    .map_err(self.failed("indexing subscribers"))?;
            }
            seen += numbers.len();
            cursor = next;
            if cursor == 0 {
                return Ok(seen);
            }
        }
    }

    async fn delete_subscriber(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        let taken: Vec<String> = TAKE_SUBSCRIBER
            .key(self.keys.subscriber(number))
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("deleting a subscriber"))?;
        let Some((forwarding, hashes)) = taken.split_first() else {
            return Ok(false);
        };
        let mut conn = self.conn();
        conn.srem::<_, _, ()>(self.keys.plain("fwd", forwarding), number.as_str())
            .await
            .map_err(self.failed("deleting a subscriber"))?;
        conn.zrem::<_, _, ()>(self.keys.subscribers(), number.as_str())
            .await
            .map_err(self.failed("deleting a subscriber"))?;
        let hashes = hashes
            .iter()
            .flat_map(|h| h.split(' '))
            .filter(|h| !h.is_empty());
        try_join_all(hashes.map(|hash| async move {
            self.conn()
                .del::<_, ()>(self.keys.token(hash))
                .await
                .map_err(self.failed("deleting a subscriber's tokens"))
        }))
        .await?;
        Ok(true)
    }

    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError> {
        let owner: Option<String> = self
            .conn()
            .get(self.keys.token(&hash.to_hex()))
            .await
            .map_err(self.failed("reading a token"))?;
        owner.as_deref().map(decode_owner).transpose()
    }

    async fn candidates_for_forwarded_call(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Result<ForwardedCallSubscribers, StoreError> {
        self.candidates(forwarded_from, to).await
    }
}

impl RedisStore {
    /// The records of these subscriber numbers, those that exist.
    async fn records(&self, numbers: &[String]) -> Result<Vec<SubscriberRecord>, StoreError> {
        let reads = numbers.iter().map(|number| async move {
            let mut conn = self.conn();
            let json: Option<String> = conn
                .hget(self.keys.plain("sub", number), "record")
                .await
                .map_err(self.failed("reading subscribers"))?;
            json.map(|j| decode::<SubscriberRecord>(&j, "subscriber"))
                .transpose()
        });
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn candidates(
        &self,
        prefer: Option<&PhoneNumber>,
        forwarding_number: &PhoneNumber,
    ) -> Result<ForwardedCallSubscribers, StoreError> {
        let preferred = async {
            match prefer {
                Some(number) => self.subscriber(number).await,
                None => Ok(None),
            }
        };
        let members = async {
            let mut conn = self.conn();
            conn.smembers::<_, Vec<String>>(self.keys.forwarding(forwarding_number))
                .await
                .map_err(self.failed("reading subscribers by forwarding number"))
        };
        let (preferred, members) = futures_util::future::try_join(preferred, members).await?;
        if let Some(record) = preferred {
            return Ok(ForwardedCallSubscribers {
                forwarded_from: Some(record),
                forwarding_to: None,
            });
        }
        let mut records: Vec<SubscriberRecord> = self
            .records(&members)
            .await?
            .into_iter()
            // A subscriber that moved and whose old entry is still there.
            .filter(|r| r.subscriber.forwarding_number == *forwarding_number)
            .collect();
        records.sort_by(|a, b| a.subscriber.number.cmp(&b.subscriber.number));
        Ok(ForwardedCallSubscribers {
            forwarded_from: None,
            forwarding_to: Some(records),
        })
    }
}

/// `s` with the characters a `SCAN MATCH` pattern gives a meaning escaped.
fn glob_escaped(s: &str) -> String {
    let mut escaped = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn encode_owner(owner: &TokenOwner) -> String {
    match owner {
        TokenOwner::Device { subscriber } => subscriber.to_string(),
        TokenOwner::Destination {
            subscriber,
            destination,
        } => format!("{subscriber} {destination}"),
    }
}

fn decode_owner(raw: &str) -> Result<TokenOwner, StoreError> {
    let corrupt = || StoreError::Unexpected(anyhow::anyhow!("a stored token owner is malformed"));
    let mut parts = raw.split(' ');
    let subscriber: PhoneNumber = serde_json::from_value(serde_json::Value::String(
        parts.next().unwrap_or_default().to_owned(),
    ))
    .map_err(|_| corrupt())?;
    match (parts.next(), parts.next()) {
        (None, _) => Ok(TokenOwner::Device { subscriber }),
        (Some(id), None) => Ok(TokenOwner::Destination {
            subscriber,
            destination: DestinationId::parse(id).map_err(|_| corrupt())?,
        }),
        _ => Err(corrupt()),
    }
}
