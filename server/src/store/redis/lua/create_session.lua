local now = now_ms()
if KEYS[9] then
  local existing = redis.call('GET', KEYS[9])
  -- The key naming this very session is this script's own earlier write
  -- (resent after the connection dropped): not a retried report.
  if existing == ARGV[4] then return {-1} end
  if existing then
    local old = live(KEYS[1], KEYS[2], existing, now)
    if old then return {-1, old[1], old[2], old[3]} end
  end
end
return {write_session(now)}
