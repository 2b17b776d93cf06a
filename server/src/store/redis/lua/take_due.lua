local taken = {}
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then taken[#taken + 1] = id end
end
return taken
