//! `SUBSCRIBERS_FILE`: imported in the background, so that the listener
//! opens at once whatever the file's size. A JSON file is read streaming,
//! entry by entry, on a thread of its own (memory never holds the whole
//! file); a TOML file is read whole. Entries go on in batches: each is
//! checked on a blocking thread (the parse, the phone numbers), two at
//! once, while two checked ones are written, each batch's reads and writes
//! a step for all its entries at a time ([`crate::store::SubscriberStore::put_subscribers`]),
//! with one bus message per batch. `/readyz` answers 503 `importing` with
//! the progress until the import is done; a subscriber is served as soon as
//! its batch is written. An invalid entry stops the import, and the process
//! (`Application::run_until`), naming the entry and the field.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, anyhow};
use futures_util::StreamExt as _;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::registry::Registry;
use crate::domain::credentials::{Credentials, NewToken, TokenPolicy};
use crate::domain::ids::DestinationId;
use crate::domain::phone::PhoneNumber;
use crate::domain::subscriber::{Subscriber, SubscriberSpec};
use crate::store::SubscriberRecord;

/// Entries checked, then written, per batch.
const BATCH: usize = 1000;
/// Batches checked at once (each on a blocking thread), and batches
/// written at once. A number listed twice in the file is refused
/// (`Listed`), so which batch lands first never decides what is stored.
const BATCHES_AT_ONCE: usize = 2;
/// How long the import waits before writing a batch again after the store
/// failed it: doubling from the first to the last.
const STORE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(250);
const STORE_RETRY_LAST: std::time::Duration = std::time::Duration::from_secs(10);
/// Batches read ahead of the checks.
const BATCHES_READ_AHEAD: usize = 4;

/// How an import is going, for `/readyz`.
#[derive(Debug)]
pub struct ImportProgress {
    imported: AtomicU64,
    bytes_read: AtomicU64,
    file_bytes: u64,
    state: Mutex<ImportState>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ImportState {
    Running,
    Done,
    Failed(String),
}

/// What `/readyz` says of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportStatus {
    /// Still going: subscribers written so far, and how much of the file
    /// was read (percent).
    Importing {
        imported: u64,
        percent: u8,
    },
    Done {
        imported: u64,
    },
    Failed(String),
}

impl ImportProgress {
    fn new(file_bytes: u64) -> Self {
        Self {
            imported: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            file_bytes,
            state: Mutex::new(ImportState::Running),
        }
    }

    pub fn status(&self) -> ImportStatus {
        let imported = self.imported.load(Ordering::Relaxed);
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            ImportState::Running => ImportStatus::Importing {
                imported,
                percent: (self.bytes_read.load(Ordering::Relaxed) * 100)
                    .checked_div(self.file_bytes)
                    .map_or(0, |p| p.min(99) as u8),
            },
            ImportState::Done => ImportStatus::Done { imported },
            ImportState::Failed(why) => ImportStatus::Failed(why.clone()),
        }
    }

    fn end(&self, state: ImportState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }
}

/// An import under way: its progress, and its end (how many subscribers,
/// or why it stopped).
pub struct Import {
    pub progress: Arc<ImportProgress>,
    pub done: tokio::task::JoinHandle<anyhow::Result<u64>>,
}

impl Registry {
    /// Starts importing `path` in the background. Fails at once only when
    /// the file cannot be read.
    pub fn import(&self, path: &Path) -> anyhow::Result<Import> {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
        let progress = Arc::new(ImportProgress::new(metadata.len()));
        self.subscribers().importing(progress.clone());
        let registry = self.clone();
        let path = path.to_owned();
        let watched = progress.clone();
        let done = tokio::spawn(async move {
            let outcome = registry.import_all(&path, &watched).await;
            match &outcome {
                Ok(count) => {
                    tracing::info!(count, file = %path.display(), "subscribers imported");
                    watched.end(ImportState::Done);
                }
                Err(err) => {
                    tracing::error!(
                        error = format!("SUBSCRIBERS_FILE: {err:#}"),
                        "the import stopped"
                    );
                    watched.end(ImportState::Failed(format!("SUBSCRIBERS_FILE: {err:#}")));
                }
            }
            outcome
        });
        Ok(Import { progress, done })
    }

    async fn import_all(&self, path: &Path, progress: &Arc<ImportProgress>) -> anyhow::Result<u64> {
        let mut listed = Listed::default();
        let (batches, mut received) =
            mpsc::channel::<anyhow::Result<Vec<serde_json::Value>>>(BATCHES_READ_AHEAD);
        let reader = {
            let path = path.to_owned();
            let progress = progress.clone();
            tokio::task::spawn_blocking(move || read_entries(&path, &progress, &batches))
        };
        let mut index = 0;
        let mut imported = 0u64;
        // Each batch is checked on a blocking thread, then written by a task:
        // a few batches checked at once while a few are written, on every
        // core. Checked batches are taken in file order, so the error an
        // import stops on is the first entry's.
        let mut checks = futures_util::stream::FuturesOrdered::new();
        let mut writes = tokio::task::JoinSet::new();
        let mut read_all = false;
        loop {
            while !read_all && checks.len() < BATCHES_AT_ONCE {
                let Some(batch) = received.recv().await else {
                    read_all = true;
                    break;
                };
                let first = index;
                index += batch.as_ref().map_or(0, Vec::len);
                let registry = self.clone();
                checks.push_back(tokio::task::spawn_blocking(move || {
                    registry.check_batch(first, batch?)
                }));
            }
            let Some(checked) = checks.next().await else {
                break;
            };
            let batch = listed.note(checked.context("checking a batch of the import")??)?;
            while writes.len() >= BATCHES_AT_ONCE {
                let written = writes.join_next().await.expect("a batch in flight");
                imported += written.context("a batch of the import")??;
                progress.imported.store(imported, Ordering::Relaxed);
            }
            let registry = self.clone();
            writes.spawn(async move { registry.write_with_retries(batch).await });
        }
        while let Some(written) = writes.join_next().await {
            imported += written.context("a batch of the import")??;
            progress.imported.store(imported, Ordering::Relaxed);
        }
        reader.await.context("reading the file")??;
        Ok(imported)
    }

    /// Checks one batch of entries (the first is `subscribers[first]`),
    /// up to the first that fails: CPU work, for a blocking thread.
    fn check_batch(&self, first: usize, batch: Vec<serde_json::Value>) -> anyhow::Result<Checked> {
        let mut checked = Checked {
            entries: Vec::with_capacity(batch.len()),
            failed: None,
        };
        for (i, value) in (first..).zip(batch) {
            let mut number = None;
            match self.check_entry(i, &value, &mut number) {
                Ok(entry) => checked.entries.push((i, entry)),
                Err(err) => {
                    checked.failed = Some(Failed {
                        index: i,
                        number,
                        error: err,
                    });
                    break;
                }
            }
        }
        Ok(checked)
    }

    /// Checks entry `subscribers[i]`; its number once read (the file must
    /// not list it twice, which [`Listed`] checks in file order).
    fn check_entry(
        &self,
        i: usize,
        value: &serde_json::Value,
        number: &mut Option<PhoneNumber>,
    ) -> anyhow::Result<(Subscriber, TokenPolicy)> {
        let at = format!("subscribers[{i}]");
        // Read without tracking where it is; read again tracking it only
        // to name the field that fails.
        let entry = match FileEntry::deserialize(value) {
            Ok(entry) => entry,
            Err(_) => serde_path_to_error::deserialize(value)
                .map_err(|e| anyhow!("{at}.{}: {}", e.path(), e.inner()))?,
        };
        // A field nobody reads is an error naming it, as in a request
        // body (`crate::input`): the entry written back shows which, when
        // the fields given are not all surely read.
        if !only_known_fields(value) {
            let understood = serde_json::to_value(&entry).context("reading an entry back")?;
            if let Some(unknown) = crate::input::unknown_field(value, &understood) {
                return Err(anyhow!("{at}.{unknown}"));
            }
        }
        let parsed = PhoneNumber::parse(&entry.number, self.rules().region)
            .map_err(|e| anyhow!("{at}.number: {e}: {:?}", entry.number))?;
        *number = Some(parsed.clone());
        let policy = entry.token_policy().map_err(|m| anyhow!("{at}.{m}"))?;
        let subscriber = entry
            .spec
            .parse(parsed, self.rules())
            .map_err(|field| anyhow!("{at}.{field}"))?;
        Ok((subscriber, policy))
    }

    /// Writes a checked batch. A store that is slow or away for a while (a
    /// restart, a failover, a busy moment) delays the import, never ends
    /// it: the service keeps serving, `/readyz` keeps saying `importing`.
    async fn write_with_retries(
        &self,
        parsed: Vec<(Subscriber, TokenPolicy)>,
    ) -> anyhow::Result<u64> {
        if parsed.is_empty() {
            return Ok(0);
        }
        let mut pause = STORE_RETRY_FIRST;
        loop {
            match self.write_batch(&parsed).await {
                Ok(written) => return Ok(written),
                Err(err) => {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        retry_in_ms = pause.as_millis() as u64,
                        "the import could not write a batch; trying again"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(STORE_RETRY_LAST);
                }
            }
        }
    }

    /// Writes parsed entries: every earlier record read in one round trip,
    /// every write in one or two.
    async fn write_batch(&self, parsed: &[(Subscriber, TokenPolicy)]) -> anyhow::Result<u64> {
        let numbers: Vec<PhoneNumber> = parsed.iter().map(|(s, _)| s.number.clone()).collect();
        let previous = self
            .subscribers()
            .store()
            .subscribers(&numbers)
            .await
            .context("reading the subscribers to import")?;
        let mut forwarding = Vec::new();
        let records: Vec<SubscriberRecord> = parsed
            .iter()
            .zip(previous)
            .map(|((subscriber, policy), previous)| {
                let mut subscriber = subscriber.clone();
                // Do-not-disturb is the device's to set, not the file's.
                subscriber.dnd_until = previous.as_ref().and_then(|p| p.subscriber.dnd_until);
                if let Some(old) = &previous {
                    forwarding.push(old.subscriber.forwarding_number.clone());
                }
                forwarding.push(subscriber.forwarding_number.clone());
                let (credentials, _) = Credentials::issue(
                    &subscriber,
                    previous.as_ref().map(|p| &p.credentials),
                    policy.clone(),
                );
                SubscriberRecord {
                    subscriber,
                    credentials,
                }
            })
            .collect();
        self.subscribers()
            .store()
            .put_subscribers(&records)
            .await
            .context("storing subscribers")?;
        forwarding.sort();
        forwarding.dedup();
        self.subscribers().imported(numbers, forwarding).await;
        Ok(records.len() as u64)
    }
}

/// A batch checked: its entries that passed (each with its index in the
/// file), up to the one that failed.
struct Checked {
    entries: Vec<(usize, (Subscriber, TokenPolicy))>,
    failed: Option<Failed>,
}

/// The entry a batch's check stopped at: its index, its number when it was
/// read, and what is wrong.
struct Failed {
    index: usize,
    number: Option<PhoneNumber>,
    error: anyhow::Error,
}

/// The numbers an import has met so far, with the entry each came in: a
/// number's digits as one integer, so that a million of them take a few
/// tens of MiB for the length of the import.
#[derive(Default)]
struct Listed(std::collections::HashMap<u64, usize>);

impl Listed {
    /// Notes the numbers of a checked batch, in file order: its entries to
    /// write, or the first error of the file (a number listed twice, or
    /// what the check found).
    fn note(&mut self, checked: Checked) -> anyhow::Result<Vec<(Subscriber, TokenPolicy)>> {
        let mut entries = Vec::with_capacity(checked.entries.len());
        for (i, entry) in checked.entries {
            self.once(&entry.0.number, i)?;
            entries.push(entry);
        }
        if let Some(failed) = checked.failed {
            if let Some(number) = &failed.number {
                self.once(number, failed.index)?;
            }
            return Err(failed.error);
        }
        Ok(entries)
    }

    /// Notes `number` for entry `index`; an error naming the other entry
    /// that lists it, when one did already.
    fn once(&mut self, number: &PhoneNumber, index: usize) -> anyhow::Result<()> {
        // E.164 holds at most 15 digits: they fit in a u64.
        let Ok(digits) = number.as_str().trim_start_matches('+').parse::<u64>() else {
            return Ok(());
        };
        match self.0.entry(digits) {
            std::collections::hash_map::Entry::Occupied(other) => Err(anyhow!(
                "subscribers[{index}].number: {number} is listed twice (also subscribers[{}]); keep one entry",
                other.get()
            )),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(index);
                Ok(())
            }
        }
    }
}

/// Counts what is read, for the progress.
struct Counted<'a, R> {
    inner: R,
    progress: &'a ImportProgress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress
            .bytes_read
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads the entries of the file at `path` into `batches`, [`BATCH`] at a
/// time (a JSON array streaming; a TOML file, by its `.toml` extension,
/// whole). Stops early when the receiver went (the import failed).
fn read_entries(
    path: &PathBuf,
    progress: &ImportProgress,
    batches: &mpsc::Sender<anyhow::Result<Vec<serde_json::Value>>>,
) -> anyhow::Result<()> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let reader = std::io::BufReader::with_capacity(
        256 * 1024,
        Counted {
            inner: file,
            progress,
        },
    );
    let is_toml = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let mut batch = Batcher {
        batch: Vec::with_capacity(BATCH),
        batches,
    };
    if is_toml {
        #[derive(Deserialize)]
        struct TomlFile {
            #[serde(default)]
            subscribers: Vec<toml::Value>,
        }
        let mut text = String::new();
        { reader }.read_to_string(&mut text)?;
        let file: TomlFile =
            toml::from_str(&text).map_err(|e| anyhow!("{}", e.to_string().replace('\n', " ")))?;
        for entry in file.subscribers {
            let value = serde_json::to_value(entry).context("reading a TOML entry")?;
            if !batch.push(value) {
                return Ok(());
            }
        }
        batch.flush();
        return Ok(());
    }
    let mut json = serde_json::Deserializer::from_reader(reader);
    let outcome = serde::Deserializer::deserialize_seq(&mut json, EachEntry { batch: &mut batch });
    match outcome {
        Ok(()) => {
            batch.flush();
        }
        Err(err) => {
            // After the batches handed on so far: the import stops there.
            let _ = batches.blocking_send(Err(anyhow!("{err}")));
        }
    }
    Ok(())
}

/// Entries read, handed on [`BATCH`] at a time.
struct Batcher<'a> {
    batch: Vec<serde_json::Value>,
    batches: &'a mpsc::Sender<anyhow::Result<Vec<serde_json::Value>>>,
}

impl Batcher<'_> {
    /// Adds an entry; false when the receiver went.
    fn push(&mut self, entry: serde_json::Value) -> bool {
        self.batch.push(entry);
        self.batch.len() < BATCH || self.flush()
    }

    /// Hands the entries on; false when the receiver went.
    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.batches.blocking_send(Ok(batch)).is_ok()
    }
}

/// Hands each element of a JSON array on as it is read.
struct EachEntry<'a, 'b> {
    batch: &'a mut Batcher<'b>,
}

impl<'de> Visitor<'de> for EachEntry<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of subscribers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(entry) = seq.next_element::<serde_json::Value>()? {
            if !self.batch.push(entry) {
                break;
            }
        }
        Ok(())
    }
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

/// The fields an entry, and a destination of it, always has when written
/// back as JSON (what [`crate::input::unknown_field`] compares with): every
/// field of theirs, none left out.
static KNOWN_FIELDS: std::sync::LazyLock<Option<(Vec<String>, Vec<String>)>> =
    std::sync::LazyLock::new(|| {
        let sample = serde_json::json!({"number": "", "forwarding_number": "",
            "destinations": [{"id": "", "kind": "phone", "address": ""}]});
        let understood = serde_json::to_value(FileEntry::deserialize(&sample).ok()?).ok()?;
        let entry = understood.as_object()?;
        let destination = entry.get("destinations")?.get(0)?.as_object()?;
        Some((
            entry.keys().cloned().collect(),
            destination.keys().cloned().collect(),
        ))
    });

/// Whether entry `value`, read without error, surely has no field nobody
/// reads, without writing the entry back: its fields, and its
/// destinations', are all among [`KNOWN_FIELDS`], and no field but
/// `destinations` (and `destination_tokens`, whose names are all read)
/// holds an object or an array, where `unknown_field` would look further.
/// False says nothing: the entry is then written back and compared.
fn only_known_fields(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    let Some((entry_fields, destination_fields)) = &*KNOWN_FIELDS else {
        return false;
    };
    let flat = |v: &Value| !matches!(v, Value::Object(_) | Value::Array(_));
    let known = |fields: &[String], name: &str| fields.iter().any(|f| f == name);
    let Value::Object(entry) = value else {
        return false;
    };
    entry.iter().all(|(name, v)| {
        known(entry_fields, name)
            && match (name.as_str(), v) {
                ("destinations", Value::Array(destinations)) => {
                    destinations.iter().all(|destination| {
                        destination.as_object().is_some_and(|d| {
                            d.iter()
                                .all(|(name, v)| known(destination_fields, name) && flat(v))
                        })
                    })
                }
                ("destination_tokens", Value::Object(tokens)) => tokens.values().all(flat),
                _ => flat(v),
            }
    })
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The shortcut says "every field read" only where the entry written
    /// back would name no field nobody reads.
    #[test]
    fn only_known_fields_agrees_with_the_entry_written_back() {
        assert!(KNOWN_FIELDS.is_some());
        let destination = json!({"id": "desk", "kind": "phone", "address": "+12025550201"});
        let cases = [
            (
                json!({"number": "+12025550199", "forwarding_number": "+12025550100",
                    "device_token": "0123456789abcdef", "destinations": [destination]}),
                true,
            ),
            (
                json!({"number": "+12025550199", "forwarding_number": "+12025550100",
                    "destination_tokens": {"desk": "0123456789abcdef"}, "ring_timeout_secs": 20,
                    "destinations": [{"id": "desk", "kind": "phone", "address": "+12025550201",
                        "webhook_url": null, "screening": true}]}),
                true,
            ),
            (
                json!({"number": "+12025550199", "forwarding_number": "+12025550100",
                    "stratgy": "simultaneous", "destinations": [destination]}),
                false,
            ),
            (
                json!({"number": "+12025550199", "forwarding_number": "+12025550100",
                    "destinations": [{"id": "desk", "kind": "phone", "adress": "+12025550201"}]}),
                false,
            ),
            // An array elsewhere is compared the long way.
            (
                json!({"number": "+12025550199", "forwarding_number": "+12025550100",
                    "caller_rules": [], "destinations": [destination]}),
                false,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(only_known_fields(&value), expected, "{value}");
            let Ok(entry) = FileEntry::deserialize(&value) else {
                continue;
            };
            let understood = serde_json::to_value(&entry).unwrap();
            if expected {
                assert!(crate::input::unknown_field(&value, &understood).is_none());
            }
        }
    }
}
