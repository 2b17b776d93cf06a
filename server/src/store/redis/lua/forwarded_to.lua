if ARGV[1] ~= '' then
  local named = redis.call('HGET', KEYS[1], ARGV[1])
  if named then return {1, named} end
end
local count = redis.call('HLEN', KEYS[1])
if count > tonumber(ARGV[2]) then return {2, count} end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 0)
return out
