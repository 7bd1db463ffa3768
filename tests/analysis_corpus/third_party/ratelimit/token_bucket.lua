--[[
  Token bucket. KEYS[1] tokens, KEYS[2] last refill timestamp; the client tags both
  "{<bucket>}:tokens" / "{<bucket>}:ts".
  ARGV[1] rate per second, ARGV[2] capacity, ARGV[3] now (s), ARGV[4] requested
]]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local requested = tonumber(ARGV[4])
local ttl = math.floor(capacity / rate * 2)
local tokens = tonumber(redis.call('GET', KEYS[1])) or capacity
local last = tonumber(redis.call('GET', KEYS[2])) or 0
local delta = math.max(0, now - last)
local filled = math.min(capacity, tokens + delta * rate)
local allowed = filled >= requested
if allowed then
  filled = filled - requested
end
redis.call('SETEX', KEYS[1], ttl, filled)
redis.call('SETEX', KEYS[2], ttl, now)
return {allowed and 1 or 0, filled}
