#!lua name=positional
local function get(keys, args)
  return redis.call('GET', keys[1])
end
local function bad(keys, args)
  redis.call('SET', args[1], 1)
  return redis.call('GET', KEYS[1])
end
redis.register_function('get', get)
redis.register_function('bad', bad)
redis.register_function('inline', function(k, a)
  return redis.call('HGET', k[1], a[1]) .. redis.call('GET', 'x:' .. a[1])
end)
