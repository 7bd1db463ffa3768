#!lua
--[[
counters/rate_limited_counter.lua -- increment a counter only when a fixed rate-limit window allows.

KEYS (both must share one hash tag, e.g. {events:<id>}):
  KEYS[1]  the counter,        e.g. {events:<id>}:count   string integer, no TTL set by this script
  KEYS[2]  the window counter, e.g. {events:<id>}:window  string integer with a TTL = the window
ARGV:
  ARGV[1]  increment for the counter: positive integer
  ARGV[2]  limit: positive integer, increments allowed per window
  ARGV[3]  window length in seconds: positive integer

The window behaves as ratelimit/fixed_window.lua (starts at the first allowed hit, refused hits
are not counted, a window counter found without a TTL gets one). Both writes happen or neither.

Returns {allowed, counter_value, remaining, ttl_ms}:
  allowed        1 = counter incremented, 0 = refused by the window (counter unchanged)
  counter_value  the counter after this call (0 if it does not exist)
  remaining      increments still allowed in the current window
  ttl_ms         milliseconds until the window resets
Error replies (first word is the stable code); nothing is written when one is returned:
  WRONG_ARITY        not exactly 2 KEYS and 3 ARGV
  SAME_KEY           KEYS[1] == KEYS[2]
  INVALID_INCREMENT  ARGV[1] not a positive integer
  INVALID_LIMIT      ARGV[2] not a positive integer
  INVALID_WINDOW     ARGV[3] not a positive integer (seconds)
  CORRUPT_VALUE      counter or window counter does not hold an integer in the safe range
  COUNTER_OVERFLOW   the counter would exceed 2^53-1
]]

local MAX_SAFE = 9007199254740991
local MAX_WINDOW_S = 100000000000

local function parse_int(s, allow_negative)
  if type(s) ~= 'string' then return nil end
  local pattern = allow_negative and '^%-?%d+$' or '^%d+$'
  if #s > 17 or not string.match(s, pattern) then return nil end
  local n = tonumber(s)
  if n == nil or n > MAX_SAFE or n < -MAX_SAFE then return nil end
  return n
end

if #KEYS ~= 2 or #ARGV ~= 3 then
  return redis.error_reply('WRONG_ARITY rate_limited_counter expects 2 KEYS and 3 ARGV')
end
if KEYS[1] == KEYS[2] then
  return redis.error_reply('SAME_KEY counter and window must be different keys')
end
local increment = parse_int(ARGV[1], false)
if increment == nil or increment < 1 then
  return redis.error_reply('INVALID_INCREMENT increment must be a positive integer, got ' .. ARGV[1])
end
local limit = parse_int(ARGV[2], false)
if limit == nil or limit < 1 then
  return redis.error_reply('INVALID_LIMIT limit must be a positive integer, got ' .. ARGV[2])
end
local window_s = parse_int(ARGV[3], false)
if window_s == nil or window_s < 1 or window_s > MAX_WINDOW_S then
  return redis.error_reply('INVALID_WINDOW window must be a positive integer (seconds), got ' .. ARGV[3])
end
local window_ms = window_s * 1000

local counter_raw = redis.call('GET', KEYS[1])
local counter = 0
if counter_raw then
  counter = parse_int(counter_raw, true)
  if counter == nil then
    return redis.error_reply('CORRUPT_VALUE counter does not hold a safe integer')
  end
end
local window_raw = redis.call('GET', KEYS[2])
local count = 0
local ttl_ms = window_ms
if window_raw then
  count = parse_int(window_raw, false)
  if count == nil then
    return redis.error_reply('CORRUPT_VALUE window counter does not hold a non-negative integer')
  end
  ttl_ms = redis.call('PTTL', KEYS[2])
end

if window_raw and count >= limit then
  if ttl_ms < 0 then
    redis.call('PEXPIRE', KEYS[2], window_ms)
    ttl_ms = window_ms
  end
  return {0, counter, 0, ttl_ms}
end
if counter > MAX_SAFE - increment then
  return redis.error_reply('COUNTER_OVERFLOW counter would exceed 2^53-1')
end

-- Allowed: every check passed, now write both keys.
if window_raw then
  redis.call('INCR', KEYS[2])
  if ttl_ms < 0 then
    redis.call('PEXPIRE', KEYS[2], window_ms)
    ttl_ms = window_ms
  end
else
  redis.call('SET', KEYS[2], 1, 'PX', window_ms)
end
counter = redis.call('INCRBY', KEYS[1], increment)
return {1, counter, limit - count - 1, ttl_ms}
