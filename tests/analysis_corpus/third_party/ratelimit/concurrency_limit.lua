-- Concurrency limiter: a sorted set of running requests, plus a global gauge.
-- KEYS[1] running zset. ARGV[1] request id, ARGV[2] now (ms), ARGV[3] max, ARGV[4] timeout (ms)
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, tonumber(ARGV[2]) - tonumber(ARGV[4]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('INCR', 'concurrency:total') --@ fails fixed-key
return 1
