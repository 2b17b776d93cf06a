local due, life, sessions, next, legacy_gone, legacy_idle = unpack(KEYS, 1, 6)
local now = now_ms()
local grace = tonumber(ARGV[5])
-- The release before kept two indexes, `gone` (when each record goes) and
-- `idle` (the open sessions, by the end of their lifetime): their entries
-- move to `life`, a batch a visit (the shard stays due until none is left).
local adopting = false
if redis.call('EXISTS', legacy_gone, legacy_idle) > 0 then
  local batch = redis.call('ZPOPMIN', legacy_gone, 1000)
  for i = 1, #batch, 2 do
    local id, at = batch[i], batch[i + 1]
    local ends = redis.call('ZSCORE', legacy_idle, id)
    if ends then at = open_until(tonumber(ends)) end
    redis.call('ZADD', life, 'NX', at, id)
  end
  adopting = redis.call('EXISTS', legacy_gone) == 1
  if not adopting then redis.call('DEL', legacy_idle) end
end
local overdue = {}
if tonumber(ARGV[2]) > 0 then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])) do
    redis.call('ZREM', due, id)
    overdue[#overdue + 1] = id
  end
end
-- Records whose time came go; open sessions whose lifetime ran out are
-- taken to be ended (at most ARGV[3]), with their version at this moment,
-- and kept `grace` longer for that (a change made later starts a new
-- lifetime, and the ending write at the old version fails).
local ended, ending = {}, tonumber(ARGV[3])
local found = redis.call('ZRANGEBYSCORE', life, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 500)
for i = 1, #found, 2 do
  local id = found[i]
  if not is_open(found[i + 1]) then
    forget(sessions, life, id)
  elseif #ended < 2 * ending then
    redis.call('ZADD', life, now + grace, id)
    local s = live(sessions, life, id, now)
    if s then
      ended[#ended + 1] = id
      ended[#ended + 1] = s[2]
    end
  end
end
local e = earliest(due, life, tonumber(ARGV[4]))
-- Another instance may have visited the shard since this one read the
-- index, and told `next` a time before this one's earliest (its forward
-- timeout may be shorter): the earlier stands; a visit never pushes a
-- time told since to later.
local told = redis.call('GET', next)
told = told and tonumber(told)
if told and told > now and (not e or told < e) then e = told end
if adopting then e = now end
if e then redis.call('SET', next, e) else redis.call('DEL', next) end
return {overdue, ended, e or -1}
