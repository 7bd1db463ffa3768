-- one script, several operations picked by name; each handler is checked
local handlers = {}
handlers.get = function(key) return redis.call('GET', key) end
handlers.put = function(key) return redis.call('SET', 'mirror:' .. ARGV[3], ARGV[2]) end
local op = handlers[ARGV[1]]
if not op then
  return redis.error_reply('unknown operation')
end
return op(KEYS[1])
