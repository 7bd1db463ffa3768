-- Resque-shaped retry of failed jobs: the failed list's entries name their queue.
-- KEYS[1] the failed list. ARGV[1] how many to retry
local moved = 0
for i = 1, tonumber(ARGV[1]) do
  local raw = redis.call('LPOP', KEYS[1])
  if not raw then break end
  local job = cjson.decode(raw)
  redis.call('RPUSH', 'resque:queue:' .. job.queue, cjson.encode(job.payload)) --@ fails fixed-prefix-id
  moved = moved + 1
end
return moved
