local now = now_ms()
local earlier = redis.call('HGET', KEYS[1], ARGV[2])
if earlier and live(KEYS[1], KEYS[2], earlier, now) then return {1, -1} end
local cutoff, best = tonumber(ARGV[1]), -1
for i = 3, #KEYS do
  local entry = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if entry[1] and tonumber(entry[2]) >= cutoff and tonumber(entry[2]) > best then
    best = tonumber(entry[2])
  end
end
return {0, best}
