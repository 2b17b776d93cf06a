local sessions, life, due, next = unpack(KEYS, 1, 4)
local indexes = tonumber(ARGV[1])
local cutoff, claim, ttl, grace = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[6]
local forward_ms, call = tonumber(ARGV[7]), ARGV[8]
local now = now_ms()
-- A claim that reaches Redis after its caller gave up (Redis was frozen)
-- must not take a session nobody will dial.
if now > tonumber(ARGV[5]) then return {-1} end
local earlier = redis.call('HGET', sessions, call)
if earlier then
  local old = live(sessions, life, earlier, now)
  if old then return {-1, old[1], old[2], old[3]} end
end
while true do
  local best_key, best_id, best_score
  for i = 5, 4 + indexes do
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
  local s, device_call, legacy = live(sessions, life, best_id, now)
  if s and not s[3] then
    local version = tonumber(s[2] or 0) + 1
    redis.call('HSET', sessions, best_id, pack_record(version, claim, device_call, s[1]), call, best_id)
    -- Kept as the release before kept it: its own fields go.
    if legacy then redis.call('HDEL', sessions, best_id .. ':v', best_id .. ':c') end
    keep_open(life, best_id, ttl, now)
    return {announce(next, due, life, forward_ms, now + tonumber(ttl)), s[1], tostring(version), claim}
  end
end
if ARGV[9] then
  local id, began = ARGV[9], ARGV[11]
  redis.call('HSET', sessions, id, pack_record(0, claim, '', ARGV[10]), call, id)
  keep_open(life, id, ttl, now)
  list_session(KEYS[5 + indexes], life, sessions, id, began, tonumber(ttl) + tonumber(grace))
  local listing = KEYS[6 + indexes]
  if listing then redis.call('ZADD', listing, began, id) end
  -- The caller has what it stored: only that it was stored goes back.
  return {announce(next, due, life, forward_ms, now + tonumber(ttl)), 1}
end
return {-1}
