local now = now_ms()
local out = {}
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  local s = live(KEYS[2], KEYS[3], id, now)
  if s then
    out[#out + 1] = s[1]
    out[#out + 1] = s[2] or ''
    out[#out + 1] = s[3] or ''
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
