local open = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if is_open(redis.call('ZSCORE', KEYS[2], id)) then open[#open + 1] = id end
end
return open
