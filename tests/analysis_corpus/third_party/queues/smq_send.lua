--[[
  Sends a message to a simple message queue. The caller passes the queue's base key whole,
  "smq:{<qname>}", and every key of the queue is built from it; it calls EVALSHA with no KEYS
  (numkeys 0), so a cluster client sends it to any node.
    ARGV[1] queue base key ("smq:{<qname>}")
    ARGV[2] message id
    ARGV[3] message body
    ARGV[4] visible-at timestamp
]]
local base = ARGV[1]
local conf = redis.call('HMGET', base .. ':Q', 'vt', 'delay', 'maxsize') --@ fails keyless
if not conf[1] then
  return redis.error_reply('QUEUE_NOT_FOUND')
end
redis.call('ZADD', base, ARGV[4], ARGV[2]) --@ fails keyless
redis.call('HSET', base .. ':Q', ARGV[2], ARGV[3]) --@ fails keyless
redis.call('HINCRBY', base .. ':Q', 'totalsent', 1) --@ fails keyless
return ARGV[2]
