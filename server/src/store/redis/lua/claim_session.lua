local sessions, gone, due, idle, call = unpack(KEYS, 1, 5)
local indexes = tonumber(ARGV[1])
local cutoff, claim, ttl, grace = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[6]
local now = now_ms()
-- A claim that reaches Redis after its caller gave up (Redis was frozen)
-- must not take a session nobody will dial.
if now > tonumber(ARGV[5]) then return false end
local earlier = redis.call('GET', call)
if earlier then
  local old = live(sessions, gone, earlier, now)
  if old then return old end
end
while true do
  local best_key, best_id, best_score
  for i = 6, 5 + indexes do
    local entry = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
    if entry[1] then
      local score = tonumber(entry[2])
      if score >= cutoff and (not best_score or score > best_score) then
        best_key, best_id, best_score = KEYS[i], entry[1], score
      end
    end
  end
  if not best_key then break end
  redis.call('ZREM', best_key, best_id)
  redis.call('ZREM', due, best_id)
  if live(sessions, gone, best_id, now)
      and redis.call('HSETNX', sessions, best_id .. ':c', claim) == 1 then
    redis.call('HINCRBY', sessions, best_id .. ':v', 1)
    keep_open(gone, idle, best_id, ttl, grace, now)
    redis.call('SET', call, best_id, 'PX', ttl)
    return redis.call('HMGET', sessions, best_id, best_id .. ':v', best_id .. ':c')
  end
end
if ARGV[7] then
  local id, data = ARGV[7], ARGV[8]
  redis.call('HSET', sessions, id, data, id .. ':v', 0)
  keep_open(gone, idle, id, ttl, grace, now)
  list_session(KEYS[6 + indexes], idle, sessions, gone, id, ARGV[9], tonumber(ttl) + tonumber(grace))
  redis.call('SET', call, id, 'PX', ttl)
  return {data, '0', false}
end
return false
