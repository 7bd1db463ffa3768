#!lua flags=allow-stale
-- GCRA limiter (theoretical arrival time in one key).
-- KEYS[1] tat key. ARGV[1] emission interval (ms), ARGV[2] burst (ms), ARGV[3] now (ms)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
tat = math.max(tat, now)
local allow_at = tat + interval - burst
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(tat + interval - now))
return {1, 0}
