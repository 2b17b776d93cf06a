local function write_session(now)
  local sessions, gone, index, due, idle, history, next = unpack(KEYS, 1, 7)
  local data, ttl, awaiting, id, instructed, over, grace, began, forward_ms, device_call =
    unpack(ARGV, 1, 10)
  local version, claim = 0, false
  local current, _, legacy = live(sessions, gone, id, now)
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
  -- The earliest work this write gives the shard: its lifetime's end (in
  -- `idle`, or `gone` when over), or its forward's deadline.
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
  local kept = tonumber(ttl)
  if over == '1' then
    redis.call('ZREM', idle, id)
    redis.call('ZADD', gone, now + kept, id)
  else
    kept = kept + tonumber(grace)
    keep_open(gone, idle, id, ttl, grace, now)
  end
  list_session(history, idle, sessions, gone, id, began, kept)
  return announce(next, due, idle, gone, tonumber(forward_ms), at)
end
