-- Resque-shaped enqueue: the queue's list and the registry of queues have fixed names.
-- ARGV[1] queue name, ARGV[2] payload
redis.call('SADD', 'resque:queues', ARGV[1]) --@ fails fixed-key
local length = redis.call('RPUSH', 'resque:queue:' .. ARGV[1], ARGV[2]) --@ fails fixed-prefix-id
redis.call('INCR', 'resque:stat:enqueued') --@ fails fixed-key
return length
