local function write_session(now)
  local sessions, gone, index, open, due, idle, history, next, device_call = unpack(KEYS, 1, 9)
  local data, ttl, awaiting, id, instructed, over, grace, began, forward_ms = unpack(ARGV, 1, 9)
  if live(sessions, gone, id, now) then
    redis.call('HINCRBY', sessions, id .. ':v', 1)
  else
    redis.call('HSET', sessions, id .. ':v', 0)
  end
  redis.call('HSET', sessions, id, data)
  if awaiting == '1' and redis.call('HEXISTS', sessions, id .. ':c') == 0 then
    redis.call('ZADD', index, instructed, id)
    redis.call('PEXPIRE', index, ttl)
    redis.call('ZADD', due, instructed, id)
  else
    redis.call('ZREM', index, id)
    redis.call('ZREM', due, id)
  end
  local kept = tonumber(ttl)
  if over == '1' then
    redis.call('SREM', open, id)
    redis.call('ZREM', idle, id)
    redis.call('ZADD', gone, now + kept, id)
  else
    kept = kept + tonumber(grace)
    redis.call('SADD', open, id)
    redis.call('PEXPIRE', open, kept)
    keep_open(gone, idle, id, ttl, grace, now)
  end
  if device_call then redis.call('SET', device_call, id, 'PX', kept) end
  list_session(history, idle, sessions, gone, id, began, kept)
  return announce(next, due, idle, gone, tonumber(forward_ms))
end
