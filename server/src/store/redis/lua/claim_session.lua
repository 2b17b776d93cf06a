local sessions, gone, due, idle, call, next = unpack(KEYS, 1, 6)
local indexes = tonumber(ARGV[1])
local cutoff, claim, ttl, grace = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[6]
local forward_ms = tonumber(ARGV[7])
local now = now_ms()
-- A claim that reaches Redis after its caller gave up (Redis was frozen)
-- must not take a session nobody will dial.
if now > tonumber(ARGV[5]) then return {-1} end
local earlier = redis.call('GET', call)
if earlier then
  local old = live(sessions, gone, earlier, now)
  if old then return {-1, old[1], old[2], old[3]} end
end
while true do
  local best_key, best_id, best_score
  for i = 7, 6 + indexes do
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
    local s = redis.call('HMGET', sessions, best_id, best_id .. ':v', best_id .. ':c')
    return {announce(next, due, idle, gone, forward_ms), s[1], s[2], s[3]}
  end
end
if ARGV[8] then
  local id, data = ARGV[8], ARGV[9]
  redis.call('HSET', sessions, id, data, id .. ':v', 0)
  keep_open(gone, idle, id, ttl, grace, now)
  list_session(KEYS[7 + indexes], idle, sessions, gone, id, ARGV[10], tonumber(ttl) + tonumber(grace))
  redis.call('SET', call, id, 'PX', ttl)
  return {announce(next, due, idle, gone, forward_ms), data, '0', false}
end
return {-1}
