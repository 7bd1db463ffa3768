-- Moves due entries of the global schedule to their queues (Sidekiq-shaped poller, one server).
-- ARGV[1] now (s)
local jobs = redis.call('ZRANGEBYSCORE', 'schedule', '-inf', ARGV[1], 'LIMIT', 0, 100) --@ fails fixed-key
for _, job in ipairs(jobs) do
  if redis.call('ZREM', 'schedule', job) == 1 then --@ fails fixed-key
    local queue = cjson.decode(job).queue
    redis.call('SADD', 'queues', queue) --@ fails fixed-key
    redis.call('LPUSH', 'queue:' .. queue, job) --@ fails fixed-prefix-id
  end
end
return #jobs
