//! The Lua scripts of the Redis store, one `.lua` file each (in `lua/`).
//! The session scripts share `session.lua` (Redis's clock, how a session is
//! kept in its shard) and the writes `write_session.lua`; each script's
//! KEYS and ARGV are documented here.

use std::sync::LazyLock;

use redis::Script;

use crate::store::HISTORY_CAP;

/// KEYS: the subscriber locator (`P:numbers`). ARGV: a number, its
/// forwarding number ('' to remove it). Replaces the number's entry;
/// returns the forwarding number it had, or false.
pub(super) static LOCATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/locate.lua")));

/// KEYS: a hash. ARGV: field, value. Sets it; returns what it replaced.
pub(super) static SWAP_FIELD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/swap_field.lua")));

/// KEYS: a hash. ARGV: field. Removes it; returns what it held.
pub(super) static TAKE_FIELD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/take_field.lua")));

/// KEYS: the records of one forwarding number. ARGV: a subscriber number
/// ('' for none), how many records at most. Returns {1, record} when that
/// subscriber is there, {2, count} when more than that many are, else
/// {0, number, record, …}: everyone forwarding there, in one round trip.
pub(super) static FORWARDED_TO: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/forwarded_to.lua")));

/// Shared by the session scripts: Redis's clock, and how a session is kept
/// in its shard (`sessions` the shard's hash, `life` when the sweep next
/// acts on each session: the end of an open one's lifetime, or when an
/// ended one's record goes).
static SESSION_LUA: LazyLock<String> = LazyLock::new(|| {
    format!(
        "local HISTORY_CAP = {HISTORY_CAP}\n{}",
        include_str!("lua/session.lua")
    )
});

/// A session script: the shared functions, then `body`.
fn session_script(body: &str) -> Script {
    Script::new(&format!("{}{body}", *SESSION_LUA))
}

/// Writing a session: its data, version and lifetime, its entry in the
/// matching index (listed while it awaits a forwarded call, unless a claim
/// took it), the forward deadlines, the subscriber's open sessions and
/// history, and its device-call key. KEYS (shared by the three scripts
/// below): sessions, life, matching index, due, history, the shard's
/// `next` (what the sweep index was told). ARGV: data, TTL in
/// ms, '1' when it awaits a forwarded call, id, instruction time (ms), '1'
/// when it is over, grace in ms, when it began (ms), the forward timeout
/// (ms), the field of its device call id ('' for none), then what each
/// script adds. Each answers first the time to
/// tell the sweep index (`P:sweep`) for the shard, or -1: when the write
/// gave the shard work earlier than it was told of.
fn write_session_script(body: &str) -> Script {
    session_script(&format!("{}{body}", include_str!("lua/write_session.lua")))
}

/// KEYS and ARGV: as for writing one.
/// Returns {announce} when written, or {-1, data, version, claim} of the
/// earlier session when the device-call key names a live one.
pub(super) static CREATE_SESSION: LazyLock<Script> =
    LazyLock::new(|| write_session_script(include_str!("lua/create_session.lua")));

/// KEYS and ARGV: as for writing one, then the version the session was read
/// at. Returns {announce, 1}, or {-1, 0} writing nothing when the stored
/// version differs (or the session is gone).
pub(super) static UPDATE_SESSION: LazyLock<Script> =
    LazyLock::new(|| write_session_script(include_str!("lua/update_session.lua")));

/// KEYS: a subscriber's history, its shard's `life`. Returns the ids of
/// its sessions not over yet (listed in both, open in `life`).
pub(super) static OPEN_SESSIONS: LazyLock<Script> =
    LazyLock::new(|| session_script(include_str!("lua/open_sessions.lua")));

/// KEYS: sessions, life. ARGV: id. Returns {data, version, claim} or false.
pub(super) static READ_SESSION: LazyLock<Script> =
    LazyLock::new(|| session_script(include_str!("lua/read_session.lua")));

/// KEYS: a subscriber's history, sessions, life.
/// Returns {data, version, claim or '', …} of its listed sessions, newest
/// first; entries whose session went are dropped from the history.
pub(super) static SESSION_HISTORY: LazyLock<Script> =
    LazyLock::new(|| session_script(include_str!("lua/session_history.lua")));

/// The claim of a forwarded call within one shard.
/// KEYS: sessions, life, due, the shard's `next`, then the matching
/// indexes of the candidate subscribers of this shard for this caller, then
/// (with a session to store when none is found) its subscriber's history.
/// ARGV: how many matching indexes, the earliest instruction time (ms)
/// still claimable, the claim (`stored::encode_claim`), TTL in ms, the time (ms) after which the
/// caller has given up waiting, grace in ms, the forward timeout (ms), the
/// call's field, then optionally the id, data and start (ms) of a session
/// to store when none is found.
/// Returns {announce, data, version, claim} of the session taken, or
/// {-1}.
///
/// Taking an entry out of its index is the claim: Redis runs one script at
/// a time, and every index a session is listed in lives in the session's
/// shard, so two webhooks can never take the same entry, across instances.
/// The most recently instructed entry wins; one older than the cutoff is
/// never claimed (its call was not forwarded, and the sweep expires it).
/// The call's field remembers the session it took, so that a retried webhook
/// for the same call gets the same session.
pub(super) static CLAIM_SESSION: LazyLock<Script> =
    LazyLock::new(|| session_script(include_str!("lua/claim_session.lua")));

/// What a claim spanning shards looks at first, in one shard.
/// KEYS: sessions, life, then matching indexes.
/// ARGV: the earliest instruction time (ms) still claimable, the call's
/// field.
/// Returns {1 when the call already took a live session of this shard,
/// else 0; the instruction time of the best claimable entry, or -1}.
pub(super) static PEEK_CLAIM: LazyLock<Script> =
    LazyLock::new(|| session_script(include_str!("lua/peek_claim.lua")));

/// One shard's sweep. KEYS: due, life, sessions, the shard's `next`, then
/// the release before's `gone` and `idle` (moved into `life` a batch at a
/// time). ARGV: the instruction time (ms) before which a forward is
/// overdue, how many overdue and how many idle sessions to take at most,
/// the forward timeout (ms), the grace (ms).
/// Drops the records whose time has come (the sessions' TTL); takes the
/// overdue ones out of `due`, and the open ones whose lifetime ran out (on
/// Redis's clock), oldest first, keeping their record the grace longer:
/// each is taken once, whichever instance asks, the idle ones with their
/// version at that moment (a change made later starts a new lifetime, and
/// the sweep's write at the old version fails). Keeps in `next` when the
/// shard next has work.
/// Returns {overdue ids, {id, version, …}, when the shard next has work
/// (ms) or -1}.
pub(super) static SWEEP_SHARD: LazyLock<Script> =
    LazyLock::new(|| session_script(include_str!("lua/sweep_shard.lua")));

/// KEYS: counter. ARGV: window in ms. Returns {hits, ms until reset}.
pub(super) static HIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/hit.lua")));
