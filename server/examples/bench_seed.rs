//! Ring reports waiting for their forwarded call, for `scripts/bench`'s
//! "new call with a ring report waiting" load: each line of stdin names a
//! subscriber and a caller, and gets a session told to reject, written
//! through the Redis store as a ring report writes it (created, notified,
//! instructed). Seeding them beforehand keeps the ring reports' own cost
//! (webhooks, rate limits) out of what the voice load measures.
//!
//! usage: bench_seed REDIS_URL|cluster:URL,URL,… PREFIX < pairs.tsv
//! where each stdin line is `subscriber<TAB>caller`. Prints how many it wrote.

use std::io::BufRead as _;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use ringrelay_server::config::RedisTarget;
use ringrelay_server::domain::phone::{Caller, PhoneNumber, Region};
use ringrelay_server::domain::session::{Instruction, Session};
use ringrelay_server::domain::subscriber::Mode;
use ringrelay_server::domain::time::Timestamp;
use ringrelay_server::redis::{Certificates, RedisConnection};
use ringrelay_server::store::{RedisStore, SessionStore as _};
use secrecy::SecretString;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, prefix] = args.as_slice() else {
        anyhow::bail!("usage: bench_seed REDIS_URL|cluster:URL,URL,… PREFIX < pairs.tsv");
    };
    let target = match url.strip_prefix("cluster:") {
        Some(seeds) => RedisTarget::Cluster(
            seeds
                .split(',')
                .map(|s| SecretString::from(s.to_owned()))
                .collect(),
        ),
        None => RedisTarget::Standalone(SecretString::from(url.clone())),
    };
    let connection = RedisConnection::open(&target, Certificates::Verify)?;
    // As the bench's service is configured: FORWARD_TIMEOUT_SECS=600.
    let store = Arc::new(
        RedisStore::new(connection, prefix).with_forward_timeout(Duration::from_secs(600)),
    );
    let region = Region::default();
    let pairs: Vec<(PhoneNumber, Caller)> = std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let (subscriber, caller) = line.split_once('\t')?;
            Some((
                PhoneNumber::parse(subscriber, region).ok()?,
                Caller::parse(Some(caller), region),
            ))
        })
        .collect();
    let written = futures_util::stream::iter(pairs)
        .map(|(subscriber, caller)| {
            let store = store.clone();
            async move {
                let now = Timestamp::now();
                let mut session = Session::ringing(subscriber, caller, Mode::Auto, None, now);
                session.notified(now);
                session.instruct(Instruction::Reject, now);
                store
                    .create_session(&session, Duration::from_secs(900))
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(64)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    println!("{written}");
    Ok(())
}
