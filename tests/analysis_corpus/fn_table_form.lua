#!lua name=tableform
cache = {}
local function reader(keys, args)
  local v = redis.call('GET', keys[1])
  redis.call('EXPIRE', keys[1], 60)
  return v
end
local function writer(keys, args)
  return redis.call('SET', keys[1], args[1])
end
redis.register_function{function_name = 'reader', callback = reader, flags = {'no-writes'}}
redis.register_function{function_name = 'writer', callback = writer}
redis.register_function{
  function_name = 'inline_ro',
  callback = function(keys, args) return redis.call('DEL', keys[1]) end,
  flags = {'no-writes', 'allow-stale'},
}
