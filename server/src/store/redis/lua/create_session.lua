local now = now_ms()
if KEYS[8] then
  local existing = redis.call('GET', KEYS[8])
  -- The key naming this very session is this script's own earlier write
  -- (resent after the connection dropped): not a retried report.
  if existing == ARGV[4] then return false end
  if existing then
    local old = live(KEYS[1], KEYS[2], existing, now)
    if old then return old end
  end
end
write_session(now)
return false
