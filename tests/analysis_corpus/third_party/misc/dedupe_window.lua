-- Drops duplicate events inside a window. The seen-set is per event type: "seen:<type>".
-- ARGV[1] type, ARGV[2] event id, ARGV[3] window (s)
local key = string.format('seen:%s', ARGV[1])
local added = redis.call('SADD', key, ARGV[2]) --@ fails fixed-prefix-id
if redis.call('TTL', key) < 0 then --@ fails fixed-prefix-id
  redis.call('EXPIRE', key, ARGV[3]) --@ fails fixed-prefix-id
end
return added
