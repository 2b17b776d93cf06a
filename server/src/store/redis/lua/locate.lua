local prefix = ARGV[1] .. ' '
local old = false
for _, member in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], '[' .. prefix, '[' .. prefix .. '\255', 'LIMIT', 0, 8)) do
  old = string.sub(member, #prefix + 1)
  redis.call('ZREM', KEYS[1], member)
end
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[1], 0, prefix .. ARGV[2]) end
return old
