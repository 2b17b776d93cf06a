local function now_ms()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
-- A session's record is one field of its shard's hash: its version, the
-- claim of the forwarded call that took it (`<ms> <call sid>`, or empty), the field of
-- its ring report's device call id (or empty), a newline after each, then
-- its data.
local function pack_record(version, claim, device_call, data)
  return version .. '\n' .. (claim or '') .. '\n' .. (device_call or '') .. '\n' .. data
end
local function unpack_record(raw)
  return string.match(raw, '^(%d+)\n([^\n]*)\n([^\n]*)\n(.*)$')
end
-- A shard's `life` index holds each session once, scored by when the
-- sweep next acts on it. Times are whole milliseconds, so a half marks a
-- session not over yet: scored half a millisecond past the end of its
-- lifetime, when the sweep ends it. A session that is over (or that the
-- sweep took to end) is scored by when its record goes. One index instead
-- of two (when records go, which sessions are open) is a sorted-set entry
-- and a write less per session.
local function open_until(ends)
  return string.format('%d.5', ends)
end
local function is_open(score)
  return score ~= false and score ~= nil and tonumber(score) % 1 ~= 0
end
-- {data, version, claim or false} of a session whose record has not gone
-- (and the field of its device call id, and whether it is kept as the
-- release before kept it), or false. An open session past its lifetime is
-- still there: the sweep ends it.
local function live(sessions, life, id, now)
  local score = redis.call('ZSCORE', life, id)
  if not score or (not is_open(score) and tonumber(score) <= now) then return false end
  local raw = redis.call('HGET', sessions, id)
  if not raw then return false end
  local version, claim, device_call, data = unpack_record(raw)
  if version then
    if claim == '' then claim = false end
    return {data, version, claim}, device_call
  end
  -- As the release before kept it: version and claim in fields of their own.
  local s = redis.call('HMGET', sessions, id, id .. ':v', id .. ':c')
  return s, '', true
end
-- The field a call's key is kept in, from a claim: `<ms> <call sid>`
-- (then, maybe, a tab and what its provider said), or the JSON of the
-- releases before.
local function call_field(claim)
  local sid = claim and (string.match(claim, '^%d+ ([^\t]*)') or string.match(claim, '"call_sid":"([^"]*)"'))
  return sid and ('c:' .. sid)
end
local function forget(sessions, life, id)
  local raw = redis.call('HGET', sessions, id)
  if raw then
    local version, claim, device_call = unpack_record(raw)
    -- The fields naming it, unless they name another session since.
    for _, field in ipairs({device_call or '', call_field(claim) or ''}) do
      if field ~= '' and redis.call('HGET', sessions, field) == id then
        redis.call('HDEL', sessions, field)
      end
    end
  end
  redis.call('HDEL', sessions, id, id .. ':v', id .. ':c')
  redis.call('ZREM', life, id)
end
-- A session not over yet: open until ttl from now, when the sweep ends it.
local function keep_open(life, id, ttl, now)
  redis.call('ZADD', life, open_until(now + tonumber(ttl)), id)
end
-- Lists a session in its subscriber's history (newest HISTORY_CAP kept),
-- which lives at least as long as the session's record: `kept` is the
-- longest any write keeps one (its TTL and the sweep's grace), so that the
-- latest write's expiry is always the furthest and is set without reading
-- the one before. An ended session that drops out goes (an open one
-- stays).
local function list_session(history, life, sessions, id, began, kept)
  redis.call('ZADD', history, began, id)
  -- ZCARD is O(1): the trim runs only when there is something to trim.
  if redis.call('ZCARD', history) > HISTORY_CAP then
    for _, old in ipairs(redis.call('ZRANGE', history, 0, -(HISTORY_CAP + 1))) do
      if not is_open(redis.call('ZSCORE', life, old)) then forget(sessions, life, old) end
    end
    redis.call('ZREMRANGEBYRANK', history, 0, -(HISTORY_CAP + 1))
  end
  redis.call('PEXPIRE', history, kept)
end
-- The earliest time the shard has work for the sweep: the first forward
-- to be overdue (its instruction time plus the forward timeout), the first
-- lifetime or record to end.
local function earliest(due, life, forward_ms)
  local e = false
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  if first[2] then e = tonumber(first[2]) + forward_ms end
  first = redis.call('ZRANGE', life, 0, 0, 'WITHSCORES')
  if first[2] then
    local at = math.floor(tonumber(first[2]))
    if not e or at < e then e = at end
  end
  return e
end
-- After a write that gave the shard work at `at` (ms, the earliest of
-- what it added): the time to tell the sweep index (`P:sweep`) when that
-- is before what it was told last (kept in `next`), else -1. The caller
-- tells it (another slot).
-- What `next` holds is never later than the shard's earliest work (the
-- sweep sets it to that, writes only lower it, and taking work out only
-- makes the earliest later), so comparing `at` with it is enough; only a
-- shard never told (or told it had none) looks at its indexes.
local function announce(next, due, life, forward_ms, at)
  local told = redis.call('GET', next)
  local e = at
  if told then
    if tonumber(told) <= e then return -1 end
  else
    e = earliest(due, life, forward_ms)
    if not e then return -1 end
  end
  redis.call('SET', next, e)
  return e
end
