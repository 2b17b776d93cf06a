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
-- {data, version, claim or false} of a session whose record has not gone
-- (and the field of its device call id, and whether it is kept as the
-- release before kept it), or false.
local function live(sessions, gone, id, now)
  local ends = redis.call('ZSCORE', gone, id)
  if not ends or tonumber(ends) <= now then return false end
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
local function forget(sessions, gone, id)
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
  redis.call('ZREM', gone, id)
end
-- A session not over yet: listed in idle until ttl from now, its record
-- kept grace longer, so that the sweep can end it.
local function keep_open(gone, idle, id, ttl, grace, now)
  redis.call('ZADD', idle, now + tonumber(ttl), id)
  redis.call('ZADD', gone, now + tonumber(ttl) + tonumber(grace), id)
end
-- Lists a session in its subscriber's history (newest HISTORY_CAP kept),
-- which lives at least as long as the session's record. An ended session
-- that drops out goes (one not over yet, listed in idle, stays).
local function list_session(history, idle, sessions, gone, id, began, kept)
  redis.call('ZADD', history, began, id)
  -- ZCARD is O(1): the trim runs only when there is something to trim.
  if redis.call('ZCARD', history) > HISTORY_CAP then
    for _, old in ipairs(redis.call('ZRANGE', history, 0, -(HISTORY_CAP + 1))) do
      if not redis.call('ZSCORE', idle, old) then forget(sessions, gone, old) end
    end
    redis.call('ZREMRANGEBYRANK', history, 0, -(HISTORY_CAP + 1))
  end
  if redis.call('PTTL', history) < tonumber(kept) then redis.call('PEXPIRE', history, kept) end
end
-- The earliest time the shard has work for the sweep: the first forward
-- to be overdue (its instruction time plus the forward timeout), the first
-- lifetime or record to end.
local function earliest(due, idle, gone, forward_ms)
  local e = false
  for _, key in ipairs({due, idle, gone}) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] then
      local at = tonumber(first[2])
      if key == due then at = at + forward_ms end
      if not e or at < e then e = at end
    end
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
local function announce(next, due, idle, gone, forward_ms, at)
  local told = redis.call('GET', next)
  local e = at
  if told then
    if tonumber(told) <= e then return -1 end
  else
    e = earliest(due, idle, gone, forward_ms)
    if not e then return -1 end
  end
  redis.call('SET', next, e)
  return e
end
