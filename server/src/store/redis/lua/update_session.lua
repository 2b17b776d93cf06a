local now = now_ms()
local current = live(KEYS[1], KEYS[2], ARGV[4], now)
if not current or current[2] ~= ARGV[11] then return {-1, 0} end
return {write_session(now), 1}
