local now = now_ms()
local device_call = ARGV[10]
if device_call ~= '' then
  local existing = redis.call('HGET', KEYS[1], device_call)
  -- The field naming this very session is this script's own earlier write
  -- (resent after the connection dropped): not a retried report.
  if existing == ARGV[4] then return {-1} end
  if existing then
    local old = live(KEYS[1], KEYS[2], existing, now)
    if old then return {-1, old[1], old[2], old[3]} end
  end
end
local announce = write_session(now)
local listing = KEYS[7]
if listing then redis.call('ZADD', listing, ARGV[8], ARGV[4]) end
return {announce, 1}
