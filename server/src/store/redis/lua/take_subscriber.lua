local old = redis.call('HMGET', KEYS[1], 'fwd', 'tokens')
redis.call('DEL', KEYS[1])
if old[1] then return {old[1], old[2] or ''} end
return {}
