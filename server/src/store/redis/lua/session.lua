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
