local function write_session(now)
  local sessions, life, index, due, history, next = unpack(KEYS, 1, 6)
  local data, ttl, awaiting, id, instructed, over, grace, began, forward_ms, device_call =
    unpack(ARGV, 1, 10)
  local version, claim = 0, false
  local current, _, legacy = live(sessions, life, id, now)
  if current then
    version = tonumber(current[2] or 0) + 1
    claim = current[3]
  end
  if device_call ~= '' then
    redis.call('HSET', sessions, id, pack_record(version, claim, device_call, data), device_call, id)
  else
    redis.call('HSET', sessions, id, pack_record(version, claim, device_call, data))
  end
  -- Kept as the release before kept it: its own fields go.
  if legacy then redis.call('HDEL', sessions, id .. ':v', id .. ':c') end
  -- The earliest work this write gives the shard: its lifetime's end (or
  -- its record's, when over), or its forward's deadline.
  local at = now + tonumber(ttl)
  if awaiting == '1' and not claim then
    redis.call('ZADD', index, instructed, id)
    redis.call('PEXPIRE', index, ttl)
    redis.call('ZADD', due, instructed, id)
    at = math.min(at, tonumber(instructed) + tonumber(forward_ms))
  else
    redis.call('ZREM', index, id)
    redis.call('ZREM', due, id)
  end
  if over == '1' then
    redis.call('ZADD', life, now + tonumber(ttl), id)
  else
    keep_open(life, id, ttl, now)
  end
  list_session(history, life, sessions, id, began, tonumber(ttl) + tonumber(grace))
  return announce(next, due, life, tonumber(forward_ms), at)
end
