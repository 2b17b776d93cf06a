local old = redis.call('HMGET', KEYS[1], 'fwd', 'tokens')
redis.call('HSET', KEYS[1], 'record', ARGV[1], 'fwd', ARGV[2], 'tokens', ARGV[3])
if old[1] then return {old[1], old[2] or ''} end
return {}
