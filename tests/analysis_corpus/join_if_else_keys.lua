-- the target list is one of two declared keys, picked by ARGV[1]
local target
if ARGV[1] == 'urgent' then
  target = KEYS[2]
else
  target = KEYS[3]
end
redis.call('LPUSH', target, ARGV[2])
redis.call('INCR', KEYS[1])
return redis.call('LLEN', target)
