#!lua name=orchestrator_lib
--[[
functions/orchestrator_lib.lua -- Redis 7 Function library "orchestrator_lib".

Load on EVERY primary (libraries are replicated to replicas but not spread between shards):
  FUNCTION LOAD REPLACE <this file>
Keys come only from the callback's `keys` parameter (FCALL <fn> <numkeys> key... arg...).

capped_incr_fn (writes)
  FCALL capped_incr_fn 1 <counter> <increment> <cap> [ttl_seconds]
  keys[1]  the counter, e.g. {quota}:user:<id>
  args     increment (positive integer), cap (non-negative integer), optional ttl seconds set only
           when this call creates the key
  Same semantics as counters/capped_incr.lua: all or nothing, never above the cap.
  Returns {new_value, 1} when incremented, {current_value, 0} when refused by the cap.
  Errors: WRONG_ARITY, INVALID_INCREMENT, INVALID_CAP, INVALID_TTL, CORRUPT_VALUE.

counter_get (flags no-writes: FCALL_RO, runs on replicas with READONLY)
  FCALL_RO counter_get 1 <counter>
  Returns the integer value, 0 when the key does not exist.
  Errors: WRONG_ARITY, CORRUPT_VALUE.
]]

local MAX_SAFE = 9007199254740991 -- 2^53-1: Lua 5.1 numbers are doubles, exact up to here

-- A decimal integer string within +-MAX_SAFE, or nil.
local function parse_int(s, allow_negative)
  if type(s) ~= 'string' then return nil end
  local pattern = allow_negative and '^%-?%d+$' or '^%d+$'
  if #s > 17 or not string.match(s, pattern) then return nil end
  local n = tonumber(s)
  if n == nil or n > MAX_SAFE or n < -MAX_SAFE then return nil end
  return n
end

local function capped_incr(keys, args)
  if #keys ~= 1 or #args < 2 or #args > 3 then
    return redis.error_reply('WRONG_ARITY capped_incr_fn expects 1 key and 2 or 3 args')
  end
  local increment = parse_int(args[1], false)
  if increment == nil or increment < 1 then
    return redis.error_reply('INVALID_INCREMENT increment must be a positive integer, got ' .. args[1])
  end
  local cap = parse_int(args[2], false)
  if cap == nil then
    return redis.error_reply('INVALID_CAP cap must be a non-negative integer, got ' .. args[2])
  end
  local ttl = nil
  if args[3] ~= nil then
    ttl = parse_int(args[3], false)
    if ttl == nil or ttl < 1 then
      return redis.error_reply('INVALID_TTL ttl must be a positive integer (seconds), got ' .. args[3])
    end
  end

  local raw = redis.call('GET', keys[1])
  local current = 0
  if raw then
    current = parse_int(raw, true)
    if current == nil then
      return redis.error_reply('CORRUPT_VALUE counter does not hold a safe integer')
    end
  end
  if current > cap - increment then
    return {current, 0}
  end
  if not raw then
    if ttl then
      redis.call('SET', keys[1], increment, 'EX', ttl)
    else
      redis.call('SET', keys[1], increment)
    end
    return {increment, 1}
  end
  return {redis.call('INCRBY', keys[1], increment), 1}
end

local function counter_get(keys, args)
  if #keys ~= 1 or #args ~= 0 then
    return redis.error_reply('WRONG_ARITY counter_get expects 1 key and no args')
  end
  local raw = redis.call('GET', keys[1])
  if not raw then
    return 0
  end
  local n = parse_int(raw, true)
  if n == nil then
    return redis.error_reply('CORRUPT_VALUE counter does not hold a safe integer')
  end
  return n
end

redis.register_function{
  function_name = 'capped_incr_fn',
  callback = capped_incr,
  description = 'Increment a counter by N unless that would pass the cap; optional TTL on create',
}
redis.register_function{
  function_name = 'counter_get',
  callback = counter_get,
  flags = {'no-writes'},
  description = 'Read a counter (0 when missing); read-only, callable with FCALL_RO on replicas',
}
