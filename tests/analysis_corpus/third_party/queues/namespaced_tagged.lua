--[[
  Enqueue for a job library that keeps all of its keys in one slot: every key is "{jq}:..." (the
  library's fixed namespace is a hash tag; the client passes KEYS the same way).
    KEYS[1] the queue's list ("{jq}:queue:<name>")
    ARGV[1] queue name, ARGV[2] payload
]]
redis.call('SADD', '{jq}:queues', ARGV[1]) --@ safe tagged-literal
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('HINCRBY', '{jq}:stat:' .. ARGV[1], 'enqueued', 1) --@ safe tagged-literal
return redis.call('LLEN', KEYS[1])
