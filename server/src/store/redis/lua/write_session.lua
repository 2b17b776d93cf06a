local function write_session(now)
  local sessions, gone, index, due, idle, history, next = unpack(KEYS, 1, 7)
  local data, ttl, awaiting, id, instructed, over, grace, began, forward_ms, device_call =
    unpack(ARGV, 1, 10)
  local version, claim = 0, false
  local current = live(sessions, gone, id, now)
  if current then
    version = tonumber(current[2] or 0) + 1
    claim = current[3]
  end
  redis.call('HSET', sessions, id, pack_record(version, claim, device_call, data))
  redis.call('HDEL', sessions, id .. ':v', id .. ':c')
  if awaiting == '1' and not claim then
    redis.call('ZADD', index, instructed, id)
    redis.call('PEXPIRE', index, ttl)
    redis.call('ZADD', due, instructed, id)
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
  if device_call ~= '' then redis.call('HSET', sessions, device_call, id) end
  list_session(history, idle, sessions, gone, id, began, kept)
  return announce(next, due, idle, gone, tonumber(forward_ms))
end
