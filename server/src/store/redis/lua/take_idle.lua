local now, out = now_ms(), {}
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local s = live(KEYS[2], KEYS[3], id, now)
    if s then
      out[#out + 1] = id
      out[#out + 1] = s[2]
    end
  end
end
return out
