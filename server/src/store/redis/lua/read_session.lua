local s = live(KEYS[1], KEYS[2], ARGV[1], now_ms())
return s
