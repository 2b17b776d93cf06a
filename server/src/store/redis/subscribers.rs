//! Subscribers in Redis, each with everything it brings under 1 KiB:
//!
//! - its record (the compact encoding, `encoding::encode_record`) is a
//!   field of `P:fw:<forwarding number>`, the hash of everyone forwarding
//!   there: a voice webhook finds its subscribers in one round trip, by the
//!   number called (or by `ForwardedFrom`, which is usually a field there);
//! - `P:numbers` lists every subscriber as `<number> <forwarding number>`,
//!   in number order: the listing, and where a record is found from a
//!   number;
//! - its token hashes are fields of `P:tk:<first 3 hex digits>` (4096
//!   small hashes), each naming `<number> <forwarding number>[ <destination>]`.
//!
//! A write goes key after key (they live in different slots), in an order
//! that keeps every reader right: the new token entries, the record, the
//! locator, then what the old record left (its old forwarding number's
//! field, its old tokens). A token is checked against its subscriber's
//! record anyway. Many subscribers (an import's batch) are written one
//! step for all of them at a time, each step waiting for the one before:
//! each subscriber's keys keep that order, and a step is one pipeline on
//! one server rather than a round trip a subscriber.
//!
//! A release before this layout kept `P:sub:<number>` (a hash with the
//! record as JSON), `P:fwd:<forwarding number>` (a set of numbers),
//! `P:tok:<token hash>` and `P:subs` (the numbers). [`SubscriberStore::index_subscribers`]
//! moves them over at start; until it is done, a subscriber not found is
//! looked for there too.

use std::sync::atomic::Ordering;

use anyhow::Context as _;
use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::AsyncCommands as _;

use super::scripts::{FORWARDED_TO, LOCATE, SWAP_FIELD, TAKE_FIELD};
use super::{RedisStore, decode};
use crate::domain::credentials::{TokenHash, TokenOwner};
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::store::encoding::{decode_record, encode_record};
use crate::store::{ForwardedCallSubscribers, StoreError, SubscriberRecord, SubscriberStore};

/// How many subscribers of one forwarding number a voice webhook without
/// `ForwardedFrom` reads at most: past that, a call cannot tell whose it is
/// (the claim would look at each one's sessions), so it is nobody's.
const SHARED_NUMBER_CAP: usize = 1000;

/// Subscribers read or written at once by a batch (an import's): on one
/// server each step for all of them is one pipeline of a few thousand
/// commands, answered well within the connection's deadline (a second)
/// however long the batch.
const PIPELINED: usize = 500;

#[async_trait]
impl SubscriberStore for RedisStore {
    async fn put_subscriber(&self, record: &SubscriberRecord) -> Result<bool, StoreError> {
        let existed = self.put_many(std::slice::from_ref(record)).await?;
        Ok(existed.first().copied().unwrap_or(false))
    }

    async fn put_subscribers(&self, records: &[SubscriberRecord]) -> Result<(), StoreError> {
        for chunk in records.chunks(PIPELINED) {
            self.put_many(chunk).await?;
        }
        Ok(())
    }

    async fn subscribers(
        &self,
        numbers: &[PhoneNumber],
    ) -> Result<Vec<Option<SubscriberRecord>>, StoreError> {
        let mut records = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(PIPELINED) {
            records.extend(self.read_many(chunk).await?);
        }
        Ok(records)
    }

    async fn subscriber(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        if let Some(forwarding) = self.locate(number).await?
            && let Some(record) = self.record_at(&forwarding, number.as_str()).await?
        {
            return Ok(Some(record));
        }
        self.old_layout(number).await
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
        // After every entry of `after`: `<after> <forwarding>` sorts before
        // `<after> \xff`, and a longer number after both.
        let mut from: Vec<u8> = after.map_or_else(
            || b"-".to_vec(),
            |n| [b"(", n.as_str().as_bytes(), b" \xff"].concat(),
        );
        while out.len() < limit {
            let want = limit - out.len();
            let entries: Vec<String> = redis::cmd("ZRANGEBYLEX")
                .arg(self.keys.numbers())
                .arg(&from)
                .arg("+")
                .arg("LIMIT")
                .arg(0)
                .arg(want)
                .query_async(&mut self.conn())
                .await
                .map_err(self.failed("listing subscribers"))?;
            let Some(last) = entries.last() else { break };
            from = [b"(", last.as_bytes()].concat();
            let reads = entries.iter().filter_map(|entry| {
                let (number, forwarding) = entry.split_once(' ')?;
                Some(self.record_at(forwarding, number))
            });
            // An entry whose record is missing (a write in progress) is
            // skipped.
            out.extend(try_join_all(reads).await?.into_iter().flatten());
        }
        Ok(out)
    }

    async fn index_subscribers(&self) -> Result<usize, StoreError> {
        let moved = self.move_old_layout().await;
        if moved.is_ok() {
            self.migrating.store(false, Ordering::Relaxed);
        }
        moved
    }

    async fn delete_subscriber(&self, number: &PhoneNumber) -> Result<bool, StoreError> {
        let forwarding: Option<String> = LOCATE
            .key(self.keys.numbers())
            .arg(number.as_str())
            .arg("")
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("deleting a subscriber"))?;
        let old = match forwarding {
            Some(forwarding) => self.take_record(&forwarding, number.as_str()).await?,
            None => None,
        };
        let old = match old {
            Some(old) => Some(old),
            None if self.migrating.load(Ordering::Relaxed) => self.take_old_layout(number).await?,
            None => None,
        };
        let Some(old) = old else {
            return Ok(false);
        };
        self.drop_tokens(&old, &[]).await?;
        Ok(true)
    }

    async fn token_subscriber(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(TokenOwner, SubscriberRecord)>, StoreError> {
        // Two round trips: the token's entry names where the record is.
        let entry = self.token_entry(hash).await?;
        let Some((owner, forwarding)) = entry.as_deref().map(decode_owner).transpose()? else {
            return match self.token_owner(hash).await? {
                Some(owner) => Ok(self
                    .subscriber(owner.subscriber())
                    .await?
                    .map(|record| (owner, record))),
                None => Ok(None),
            };
        };
        let record = match self
            .record_at(&forwarding, owner.subscriber().as_str())
            .await?
        {
            Some(record) => Some(record),
            // Moved since the entry was written.
            None => self.subscriber(owner.subscriber()).await?,
        };
        Ok(record.map(|record| (owner, record)))
    }

    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError> {
        if let Some(owner) = self.token_entry(hash).await? {
            return decode_owner(&owner).map(|(owner, _)| Some(owner));
        }
        if !self.migrating.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let old: Option<String> = self
            .conn()
            .get(self.keys.token(&hash.to_hex()))
            .await
            .map_err(self.failed("reading a token"))?;
        old.as_deref().map(decode_old_owner).transpose()
    }

    async fn candidates_for_forwarded_call(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Result<ForwardedCallSubscribers, StoreError> {
        // One round trip: the called number's records (with
        // `forwarded_from`'s, when it forwards there), and where
        // `forwarded_from` forwards to, at once.
        let here = async {
            FORWARDED_TO
                .key(self.keys.records(to.as_str()))
                .arg(forwarded_from.map_or("", PhoneNumber::as_str))
                .arg(SHARED_NUMBER_CAP)
                .invoke_async::<Vec<redis::Value>>(&mut self.conn())
                .await
                .map_err(self.failed("reading subscribers by forwarding number"))
        };
        let elsewhere = async {
            match forwarded_from {
                Some(number) => self.locate(number).await,
                None => Ok(None),
            }
        };
        let (here, elsewhere) = futures_util::future::try_join(here, elsewhere).await?;
        let mut here = here.into_iter();
        let kind: i64 = here
            .next()
            .map(redis::from_redis_value)
            .transpose()
            .map_err(|err| StoreError::Unexpected(anyhow::anyhow!("reading subscribers: {err}")))?
            .unwrap_or(0);
        let rest: Vec<Vec<u8>> = here
            .map(redis::from_redis_value)
            .collect::<Result<_, _>>()
            .map_err(|err| StoreError::Unexpected(anyhow::anyhow!("reading subscribers: {err}")))?;
        if kind == 1 {
            return Ok(ForwardedCallSubscribers {
                forwarded_from: Some(decode_stored(&rest[0])?),
                forwarding_to: None,
            });
        }
        // `forwarded_from` is a subscriber forwarding elsewhere: a second
        // round trip, for a call its carrier sent to another number.
        if let (Some(number), Some(forwarding)) = (forwarded_from, elsewhere)
            && let Some(record) = self.record_at(&forwarding, number.as_str()).await?
        {
            return Ok(ForwardedCallSubscribers {
                forwarded_from: Some(record),
                forwarding_to: None,
            });
        }
        let mut records = Vec::new();
        if kind == 2 {
            tracing::warn!(forwarding_number = %to, "more than {SHARED_NUMBER_CAP} subscribers forward to this number: a call to it without ForwardedFrom is nobody's");
        } else {
            for pair in rest.chunks_exact(2) {
                records.push(decode_stored(&pair[1])?);
            }
        }
        if records.is_empty() && self.migrating.load(Ordering::Relaxed) {
            return self.old_candidates(forwarded_from, to).await;
        }
        records.sort_by(|a, b| a.subscriber.number.cmp(&b.subscriber.number));
        Ok(ForwardedCallSubscribers {
            forwarded_from: None,
            forwarding_to: Some(records),
        })
    }
}

impl RedisStore {
    /// Writes `records`, each as [`SubscriberStore::put_subscriber`] says
    /// (the order in the module's comment), one step for all of them at a
    /// time: their new token entries, then their records, then their
    /// locators, then what their old records left. So each subscriber's
    /// keys are still written in that order, and a step costs one round
    /// trip on one server ([`RedisStore::each`]) rather than one a
    /// subscriber. Whether each existed.
    async fn put_many(&self, records: &[SubscriberRecord]) -> Result<Vec<bool>, StoreError> {
        let puts: Vec<Put<'_>> = records.iter().map(Put::new).collect();
        // New tokens first: no reader trusts a token without the record.
        let mut tokens = redis::pipe();
        for (hash, owner) in puts.iter().flat_map(|p| &p.owners) {
            let (bucket, field) = self.keys.token_entry(hash);
            tokens.hset(bucket, field, owner);
        }
        self.each::<()>(&tokens, BatchKeys::Many, "writing a subscriber's tokens")
            .await?;
        let mut writes = redis::pipe();
        for put in &puts {
            writes.add_command(script_cmd(
                &SWAP_FIELD,
                &[self.keys.records(put.forwarding).as_bytes()],
                &[put.number.as_bytes(), &put.encoded],
            ));
        }
        let replaced: Vec<Option<Vec<u8>>> = self
            .each(&writes, BatchKeys::Many, "writing a subscriber")
            .await?;
        let mut locators = redis::pipe();
        let numbers = self.keys.numbers();
        for put in &puts {
            locators.add_command(script_cmd(
                &LOCATE,
                &[numbers.as_bytes()],
                &[put.number.as_bytes(), put.forwarding.as_bytes()],
            ));
        }
        let located: Vec<Option<String>> = self
            .each(&locators, BatchKeys::One, "indexing a subscriber")
            .await?;
        try_join_all(
            puts.iter()
                .zip(replaced)
                .zip(located)
                .map(|((put, replaced), located)| self.put_done(put, replaced, located)),
        )
        .await
    }

    /// The last step of writing one subscriber: takes away what its old
    /// record left (its record under its old forwarding number, tokens it
    /// no longer has, its keys of the layout before). Whether it existed.
    async fn put_done(
        &self,
        put: &Put<'_>,
        replaced_here: Option<Vec<u8>>,
        old_forwarding: Option<String>,
    ) -> Result<bool, StoreError> {
        let old = match old_forwarding.as_deref() {
            Some(old) if old != put.forwarding => self.take_record(old, put.number).await?,
            // Written again as it was (a file imported again): the same
            // tokens, nothing left behind.
            _ if replaced_here.as_deref() == Some(put.encoded.as_slice()) => return Ok(true),
            _ => replaced_here.map(|r| decode_stored(&r)).transpose()?,
        };
        let old = match old {
            Some(old) => Some(old),
            None if self.migrating.load(Ordering::Relaxed) => {
                self.take_old_layout(&put.record.subscriber.number).await?
            }
            None => None,
        };
        let Some(old) = old else {
            return Ok(old_forwarding.is_some());
        };
        let kept: Vec<&str> = put.owners.iter().map(|(h, _)| h.as_str()).collect();
        self.drop_tokens(&old, &kept).await?;
        Ok(true)
    }

    /// Reads `numbers`' records as [`SubscriberStore::subscriber`] does,
    /// one step for all of them at a time: their locators, then their
    /// records (then, while the layout before is moved, those of the ones
    /// not found).
    async fn read_many(
        &self,
        numbers: &[PhoneNumber],
    ) -> Result<Vec<Option<SubscriberRecord>>, StoreError> {
        let mut locate = redis::pipe();
        for number in numbers {
            locate.add_command(locate_cmd(&self.keys.numbers(), number));
        }
        let located: Vec<Vec<String>> = self
            .each(&locate, BatchKeys::One, "reading a subscriber")
            .await?;
        let located: Vec<Option<String>> = numbers
            .iter()
            .zip(located)
            .map(|(number, found)| located_at(number, found))
            .collect();
        let mut reads = redis::pipe();
        for (number, forwarding) in numbers.iter().zip(&located) {
            if let Some(forwarding) = forwarding {
                reads.hget(self.keys.records(forwarding), number.as_str());
            }
        }
        let mut stored = self
            .each::<Option<Vec<u8>>>(&reads, BatchKeys::Many, "reading a subscriber")
            .await?
            .into_iter();
        let mut records = Vec::with_capacity(numbers.len());
        let mut missing = Vec::new();
        for (i, forwarding) in located.iter().enumerate() {
            let record = match forwarding {
                Some(_) => stored.next().flatten(),
                None => None,
            };
            records.push(record.map(|r| decode_stored(&r)).transpose()?);
            if records[i].is_none() {
                missing.push(i);
            }
        }
        if missing.is_empty() || !self.migrating.load(Ordering::Relaxed) {
            return Ok(records);
        }
        let mut old = redis::pipe();
        for &i in &missing {
            old.hget(self.keys.subscriber(&numbers[i]), "record");
        }
        let old: Vec<Option<String>> = self
            .each(&old, BatchKeys::Many, "reading a subscriber")
            .await?;
        for (i, json) in missing.into_iter().zip(old) {
            records[i] = json.map(|j| decode(&j, "subscriber")).transpose()?;
        }
        Ok(records)
    }

    /// Sends `commands` and reads their answers, in order: to one server
    /// as one pipeline (one round trip; the server runs them in that
    /// order), to a cluster as one pipeline a node, to every node at once
    /// (so in no order between nodes), unless they all touch `One` key. A script not loaded yet (a restarted Redis) is
    /// loaded and the whole sent again: every command of these batches may
    /// be repeated.
    async fn each<T: redis::FromRedisValue>(
        &self,
        commands: &redis::Pipeline,
        keys: BatchKeys,
        context: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        if commands.cmd_iter().next().is_none() {
            return Ok(Vec::new());
        }
        let answers = match self.send_each(commands, keys).await {
            Err(err)
                if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                for script in [&*SWAP_FIELD, &*LOCATE] {
                    script
                        .load_async(&mut self.conn())
                        .await
                        .map_err(self.failed(context))?;
                }
                self.send_each(commands, keys).await
            }
            answered => answered,
        }
        .map_err(self.failed(context))?;
        answers
            .into_iter()
            .map(redis::from_redis_value)
            .collect::<Result<_, _>>()
            .map_err(|err| StoreError::Unexpected(anyhow::anyhow!("{context}: {err}")))
    }

    async fn send_each(
        &self,
        commands: &redis::Pipeline,
        keys: BatchKeys,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        if self.connection.is_cluster() && keys == BatchKeys::Many {
            match self.connection.pipelines_by_node(commands).await {
                // A slot moved since the map was read, or a node failed:
                // each command on its own, which the client routes (and
                // follows to the slot's new node) itself.
                Err(err)
                    if err.kind() != redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    tracing::debug!(error = %err, "a batch by node failed; a command at a time");
                    try_join_all(
                        commands.cmd_iter().map(|command| async move {
                            command.query_async(&mut self.conn()).await
                        }),
                    )
                    .await
                }
                answered => answered,
            }
        } else {
            commands.query_async(&mut self.conn()).await
        }
    }

    /// The entry of the token with this hash, if any.
    async fn token_entry(&self, hash: &TokenHash) -> Result<Option<String>, StoreError> {
        let (bucket, field) = self.keys.token_entry(&hash.to_hex());
        self.conn()
            .hget(bucket, field)
            .await
            .map_err(self.failed("reading a token"))
    }

    /// The forwarding number under which subscriber `number`'s record is.
    async fn locate(&self, number: &PhoneNumber) -> Result<Option<String>, StoreError> {
        let found: Vec<String> = locate_cmd(&self.keys.numbers(), number)
            .query_async(&mut self.conn())
            .await
            .map_err(self.failed("reading a subscriber"))?;
        Ok(located_at(number, found))
    }

    /// The record of `number` under `forwarding`, if it is there.
    async fn record_at(
        &self,
        forwarding: &str,
        number: &str,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        let stored: Option<Vec<u8>> = self
            .conn()
            .hget(self.keys.records(forwarding), number)
            .await
            .map_err(self.failed("reading a subscriber"))?;
        stored.map(|s| decode_stored(&s)).transpose()
    }

    /// Takes the record of `number` out of `forwarding`'s.
    async fn take_record(
        &self,
        forwarding: &str,
        number: &str,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        let taken: Option<Vec<u8>> = TAKE_FIELD
            .key(self.keys.records(forwarding))
            .arg(number)
            .invoke_async(&mut self.conn())
            .await
            .map_err(self.failed("moving a subscriber"))?;
        taken.map(|t| decode_stored(&t)).transpose()
    }

    /// Removes the token entries of `old`'s tokens but those in `kept`.
    async fn drop_tokens(&self, old: &SubscriberRecord, kept: &[&str]) -> Result<(), StoreError> {
        let gone = old
            .credentials
            .owners(&old.subscriber.number)
            .map(|(hash, _)| hash.to_hex())
            .filter(|hash| !kept.contains(&hash.as_str()));
        try_join_all(gone.map(|hash| async move {
            let (bucket, field) = self.keys.token_entry(&hash);
            self.conn()
                .hdel::<_, _, ()>(bucket, field)
                .await
                .map_err(self.failed("removing a subscriber's old tokens"))
        }))
        .await?;
        Ok(())
    }

    /// Subscriber `number` in the layout before this one, while it is moved.
    async fn old_layout(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        if !self.migrating.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let json: Option<String> = self
            .conn()
            .hget(self.keys.subscriber(number), "record")
            .await
            .map_err(self.failed("reading a subscriber"))?;
        json.map(|j| decode(&j, "subscriber")).transpose()
    }

    /// The forwarded call's subscribers in the layout before this one.
    async fn old_candidates(
        &self,
        forwarded_from: Option<&PhoneNumber>,
        to: &PhoneNumber,
    ) -> Result<ForwardedCallSubscribers, StoreError> {
        if let Some(number) = forwarded_from
            && let Some(record) = self.old_layout(number).await?
        {
            return Ok(ForwardedCallSubscribers {
                forwarded_from: Some(record),
                forwarding_to: None,
            });
        }
        let members: Vec<String> = self
            .conn()
            .smembers(self.keys.forwarding(to))
            .await
            .map_err(self.failed("reading subscribers by forwarding number"))?;
        let reads = members.iter().filter_map(|n| {
            let number = PhoneNumber::parse(n, crate::domain::phone::Region::default()).ok()?;
            Some(async move { self.old_layout(&number).await })
        });
        let mut records: Vec<SubscriberRecord> = try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .filter(|r| r.subscriber.forwarding_number == *to)
            .collect();
        records.sort_by(|a, b| a.subscriber.number.cmp(&b.subscriber.number));
        Ok(ForwardedCallSubscribers {
            forwarded_from: None,
            forwarding_to: Some(records),
        })
    }

    /// Removes subscriber `number` from the layout before this one; what
    /// it held there.
    async fn take_old_layout(
        &self,
        number: &PhoneNumber,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        let Some(old) = self.old_layout(number).await? else {
            return Ok(None);
        };
        let mut conn = self.conn();
        conn.del::<_, ()>(self.keys.subscriber(number))
            .await
            .map_err(self.failed("moving a subscriber"))?;
        conn.srem::<_, _, ()>(
            self.keys.forwarding(&old.subscriber.forwarding_number),
            number.as_str(),
        )
        .await
        .map_err(self.failed("moving a subscriber"))?;
        conn.zrem::<_, _, ()>(self.keys.subscribers(), number.as_str())
            .await
            .map_err(self.failed("moving a subscriber"))?;
        for (hash, _) in old.credentials.owners(number) {
            conn.del::<_, ()>(self.keys.token(&hash.to_hex()))
                .await
                .map_err(self.failed("moving a subscriber"))?;
        }
        Ok(Some(old))
    }

    /// Moves every subscriber of the layout before this one (those in its
    /// listing index, and on one server those written before that index:
    /// a `SCAN`) into this one, keeping their tokens; how many.
    async fn move_old_layout(&self) -> Result<usize, StoreError> {
        if !self.connection.is_cluster() {
            self.index_old_layout().await?;
        }
        let mut moved = 0;
        loop {
            let numbers: Vec<String> = self
                .conn()
                .zrange(self.keys.subscribers(), 0, 499)
                .await
                .map_err(self.failed("moving subscribers"))?;
            if numbers.is_empty() {
                return Ok(moved);
            }
            for raw in &numbers {
                let json: Option<String> = self
                    .conn()
                    .hget(self.keys.plain("sub", raw), "record")
                    .await
                    .map_err(self.failed("moving subscribers"))?;
                if let Some(Ok(record)) = json.map(|j| decode::<SubscriberRecord>(&j, "subscriber"))
                {
                    let number = &record.subscriber.number;
                    // Written anew, with its tokens, unless written since.
                    if self.locate(number).await?.is_none() {
                        self.put_subscriber(&record).await?;
                        moved += 1;
                    }
                    self.take_old_layout(number).await?;
                }
                self.conn()
                    .zrem::<_, _, ()>(self.keys.subscribers(), raw)
                    .await
                    .map_err(self.failed("moving subscribers"))?;
            }
        }
    }

    /// Puts the old layout's subscribers written before its listing index
    /// into that index (one server only: `SCAN` sees one node of a cluster).
    async fn index_old_layout(&self) -> Result<(), StoreError> {
        // SCAN, not KEYS: it never blocks Redis for long, whatever the count.
        let pattern = format!("{}:sub:*", glob_escaped(&self.keys.prefix));
        let prefix = format!("{}:sub:", self.keys.prefix);
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
                .map_err(self.failed("moving subscribers"))?;
            let numbers: Vec<&str> = batch
                .iter()
                .filter_map(|key| key.strip_prefix(&prefix))
                .collect();
            if !numbers.is_empty() {
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(self.keys.subscribers());
                for number in &numbers {
                    zadd.arg(0).arg(*number);
                }
                zadd.query_async::<()>(&mut self.conn())
                    .await
                    .map_err(self.failed("moving subscribers"))?;
            }
            cursor = next;
            if cursor == 0 {
                return Ok(());
            }
        }
    }
}

/// The keys of a batch's commands ([`RedisStore::each`]): one key (the
/// locator), which a cluster takes as one pipeline too, or many.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BatchKeys {
    One,
    Many,
}

/// One subscriber being written: what its keys get.
struct Put<'a> {
    record: &'a SubscriberRecord,
    number: &'a str,
    forwarding: &'a str,
    /// Its token hashes (hex), and each one's entry.
    owners: Vec<(String, String)>,
    encoded: Vec<u8>,
}

impl<'a> Put<'a> {
    fn new(record: &'a SubscriberRecord) -> Self {
        let subscriber = &record.subscriber;
        let forwarding = subscriber.forwarding_number.as_str();
        Self {
            record,
            number: subscriber.number.as_str(),
            forwarding,
            owners: record
                .credentials
                .owners(&subscriber.number)
                .map(|(hash, owner)| (hash.to_hex(), encode_owner(&owner, forwarding)))
                .collect(),
            encoded: encode_record(record),
        }
    }
}

/// `script` run on `keys` and `args`, as a command that can be pipelined
/// (`EVALSHA`: [`RedisStore::each`] loads the script when Redis lacks it).
fn script_cmd(script: &redis::Script, keys: &[&[u8]], args: &[&[u8]]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len());
    for part in keys.iter().chain(args) {
        cmd.arg(*part);
    }
    cmd
}

/// The locator entry of `number`: `<number> <forwarding number>`.
fn locate_cmd(numbers: &str, number: &PhoneNumber) -> redis::Cmd {
    let prefix = format!("{number} ");
    let mut cmd = redis::cmd("ZRANGEBYLEX");
    cmd.arg(numbers)
        .arg(format!("[{prefix}"))
        .arg([b"[", prefix.as_bytes(), b"\xff"].concat())
        .arg("LIMIT")
        .arg(0)
        .arg(1);
    cmd
}

/// The forwarding number in `number`'s locator entry, when it has one.
fn located_at(number: &PhoneNumber, found: Vec<String>) -> Option<String> {
    let prefix = number.as_str();
    found.into_iter().next().and_then(|entry| {
        entry
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
    })
}

/// A stored record: the compact encoding (or JSON).
fn decode_stored(bytes: &[u8]) -> Result<SubscriberRecord, StoreError> {
    decode_record(bytes)
        .context("decoding a stored subscriber")
        .map_err(StoreError::Unexpected)
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

/// A token's entry: `<number> <forwarding number>[ <destination id>]`.
fn encode_owner(owner: &TokenOwner, forwarding: &str) -> String {
    match owner {
        TokenOwner::Device { subscriber } => format!("{subscriber} {forwarding}"),
        TokenOwner::Destination {
            subscriber,
            destination,
        } => format!("{subscriber} {forwarding} {destination}"),
    }
}

/// A token's entry: its owner, and where the owner's record is.
fn decode_owner(raw: &str) -> Result<(TokenOwner, String), StoreError> {
    let mut parts = raw.splitn(3, ' ');
    let (number, forwarding, destination) = (parts.next(), parts.next(), parts.next());
    let owner = owner_from(number.unwrap_or_default(), destination)?;
    Ok((owner, forwarding.unwrap_or_default().to_owned()))
}

/// A token key's value in the layout before this one: `<number>[ <destination id>]`.
fn decode_old_owner(raw: &str) -> Result<TokenOwner, StoreError> {
    let mut parts = raw.splitn(2, ' ');
    owner_from(parts.next().unwrap_or_default(), parts.next())
}

fn owner_from(number: &str, destination: Option<&str>) -> Result<TokenOwner, StoreError> {
    let corrupt = || StoreError::Unexpected(anyhow::anyhow!("a stored token owner is malformed"));
    let subscriber: PhoneNumber =
        serde_json::from_value(serde_json::Value::String(number.to_owned()))
            .map_err(|_| corrupt())?;
    match destination {
        None => Ok(TokenOwner::Device { subscriber }),
        Some(id) => Ok(TokenOwner::Destination {
            subscriber,
            destination: DestinationId::parse(id).map_err(|_| corrupt())?,
        }),
    }
}
