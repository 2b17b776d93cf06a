local idle, sessions, gone = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', gone, '-inf', now, 'LIMIT', 0, 500)) do
  forget(sessions, gone, id)
end
return redis.call('ZRANGEBYSCORE', idle, '-inf', now, 'WITHSCORES', 'LIMIT', 0, ARGV[1])
