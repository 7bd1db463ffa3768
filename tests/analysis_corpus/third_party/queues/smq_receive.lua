--[[
  Receives one visible message from a simple message queue (EVALSHA with numkeys 0, as smq_send).
    ARGV[1] queue base key ("smq:{<qname>}")
    ARGV[2] now (ms)
    ARGV[3] new visibility timestamp
]]
local base = ARGV[1]
local msg = redis.call('ZRANGEBYSCORE', base, '-inf', ARGV[2], 'LIMIT', 0, 1) --@ fails keyless
if #msg == 0 then
  return {}
end
local id = msg[1]
redis.call('ZADD', base, ARGV[3], id) --@ fails keyless
redis.call('HINCRBY', base .. ':Q', 'totalrecv', 1) --@ fails keyless
local body = redis.call('HGET', base .. ':Q', id) --@ fails keyless
local rc = redis.call('HINCRBY', base .. ':Q', id .. ':rc', 1) --@ fails keyless
return {id, body, rc}
