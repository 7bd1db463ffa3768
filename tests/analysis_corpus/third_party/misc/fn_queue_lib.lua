#!lua name=jobq
--[[
  A function library of a job queue. FCALL passes the queue's wait list in keys[1] and the queue's
  key prefix "jq:{<queue>}:" in args[1]; job hashes are "<prefix>job:<id>".
]]
local function push(keys, args)
  local id = redis.call('INCR', args[1] .. 'ids') --@ safe argv-prefix
  redis.call('HSET', args[1] .. 'job:' .. id, 'data', args[2]) --@ safe argv-prefix
  redis.call('LPUSH', keys[1], id)
  return id
end
local function pop(keys, args)
  local id = redis.call('RPOP', keys[1])
  if not id then return nil end
  return redis.call('HGETALL', args[1] .. 'job:' .. id) --@ safe argv-prefix
end
redis.register_function('jobq_push', push)
redis.register_function('jobq_pop', pop)
