#!lua name=counters
--[[
  A function library of counters. FCALL passes the counter's key; a counter's history list hangs
  off it; the daily rollup is a fixed key of the library.
]]
local function incr(keys, args)
  local n = redis.call('INCRBY', keys[1], args[1])
  redis.call('LPUSH', keys[1] .. ':history', n) --@ safe keys-prefix
  redis.call('LTRIM', keys[1] .. ':history', 0, 99) --@ safe keys-prefix
  redis.call('HINCRBY', 'counters:rollup', keys[1], args[1]) --@ fails fixed-key
  return n
end
local function get(keys, args)
  return redis.call('GET', keys[1])
end
redis.register_function('counter_incr', incr)
redis.register_function{function_name = 'counter_get', callback = get, flags = {'no-writes'}}
