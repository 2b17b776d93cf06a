local due, idle, sessions, gone, next = unpack(KEYS, 1, 5)
local now = now_ms()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', gone, '-inf', now, 'LIMIT', 0, 500)) do
  forget(sessions, gone, id)
end
local overdue = {}
if tonumber(ARGV[2]) > 0 then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])) do
    redis.call('ZREM', due, id)
    overdue[#overdue + 1] = id
  end
end
local ended = {}
if tonumber(ARGV[3]) > 0 then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', idle, '-inf', now, 'LIMIT', 0, ARGV[3])) do
    redis.call('ZREM', idle, id)
    local s = live(sessions, gone, id, now)
    if s then
      ended[#ended + 1] = id
      ended[#ended + 1] = s[2]
    end
  end
end
local e = earliest(due, idle, gone, tonumber(ARGV[4]))
if e then redis.call('SET', next, e) else redis.call('DEL', next) end
return {overdue, ended, e or -1}
