#!lua
--[[
ratelimit/fixed_window.lua -- fixed-window rate limit: at most `limit` hits per window.

KEYS:
  KEYS[1]  the window counter, e.g. {rl}:api:<client_id>   (string integer with a TTL = the window)
ARGV:
  ARGV[1]  limit: positive integer, hits allowed per window
  ARGV[2]  window length in seconds: positive integer

The window starts at the first allowed hit (the key is created with PX = window) and ends when the
key expires. Refused hits are not counted. A counter found without a TTL (written by something
else) is given one, so a window can never become permanent.

Returns {allowed, remaining, ttl_ms}:
  allowed    1 = this hit is allowed and counted, 0 = refused
  remaining  hits still allowed in the current window after this call
  ttl_ms     milliseconds until the window resets
Error replies (first word is the stable code); nothing is written when one is returned:
  WRONG_ARITY     not exactly 1 KEY and 2 ARGV
  INVALID_LIMIT   ARGV[1] not a positive integer
  INVALID_WINDOW  ARGV[2] not a positive integer (seconds)
  CORRUPT_VALUE   the counter does not hold a non-negative integer
]]

local MAX_SAFE = 9007199254740991
local MAX_WINDOW_S = 100000000000 -- keeps window * 1000 (ms) exact and well inside PX limits

local function parse_uint(s)
  if type(s) ~= 'string' or #s > 16 or not string.match(s, '^%d+$') then return nil end
  local n = tonumber(s)
  if n == nil or n > MAX_SAFE then return nil end
  return n
end

if #KEYS ~= 1 or #ARGV ~= 2 then
  return redis.error_reply('WRONG_ARITY fixed_window expects 1 KEY and 2 ARGV')
end
local limit = parse_uint(ARGV[1])
if limit == nil or limit < 1 then
  return redis.error_reply('INVALID_LIMIT limit must be a positive integer, got ' .. ARGV[1])
end
local window_s = parse_uint(ARGV[2])
if window_s == nil or window_s < 1 or window_s > MAX_WINDOW_S then
  return redis.error_reply('INVALID_WINDOW window must be a positive integer (seconds), got ' .. ARGV[2])
end
local window_ms = window_s * 1000

local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('SET', KEYS[1], 1, 'PX', window_ms)
  return {1, limit - 1, window_ms}
end

local count = parse_uint(raw)
if count == nil then
  return redis.error_reply('CORRUPT_VALUE window counter does not hold a non-negative integer')
end
local ttl_ms = redis.call('PTTL', KEYS[1])
if ttl_ms < 0 then
  -- No TTL on the counter: repair it so the window ends.
  redis.call('PEXPIRE', KEYS[1], window_ms)
  ttl_ms = window_ms
end

if count >= limit then
  return {0, 0, ttl_ms}
end
count = redis.call('INCR', KEYS[1])
return {1, limit - count, ttl_ms}
