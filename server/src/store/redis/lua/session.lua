local function now_ms()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
-- {data, version, claim} of a session whose record has not gone, or false.
local function live(sessions, gone, id, now)
  local ends = redis.call('ZSCORE', gone, id)
  if not ends or tonumber(ends) <= now then return false end
  local s = redis.call('HMGET', sessions, id, id .. ':v', id .. ':c')
  if not s[1] then return false end
  return s
end
local function forget(sessions, gone, id)
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
  for _, old in ipairs(redis.call('ZRANGE', history, 0, -(HISTORY_CAP + 1))) do
    if not redis.call('ZSCORE', idle, old) then forget(sessions, gone, old) end
  end
  redis.call('ZREMRANGEBYRANK', history, 0, -(HISTORY_CAP + 1))
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
-- After a write: the time to tell the sweep index (`P:sweep`) when the
-- shard now has work before what it was told last (kept in `next`), else
-- -1. The caller tells it (another slot).
local function announce(next, due, idle, gone, forward_ms)
  local e = earliest(due, idle, gone, forward_ms)
  if not e then return -1 end
  local told = redis.call('GET', next)
  if told and tonumber(told) <= e then return -1 end
  redis.call('SET', next, e)
  return e
end
