local now = now_ms()
local current = live(KEYS[1], KEYS[2], ARGV[4], now)
if not current or current[2] ~= ARGV[9] then return 0 end
write_session(now)
return 1
