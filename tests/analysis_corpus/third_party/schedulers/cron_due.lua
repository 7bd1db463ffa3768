--[[
  Fires due cron entries: each entry's definition hash hangs off KEYS[2], the scheduler's prefix
  "{sched:<name>}:def"; the target queue's list name is stored in the definition (queues of other
  services: plain names such as "queue:mailer").
    KEYS[1] next-run zset, KEYS[2] definitions prefix
    ARGV[1] now (s)
]]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1])
for _, id in ipairs(due) do
  local def = KEYS[2] .. ':' .. id
  local every, target, payload = unpack(redis.call('HMGET', def, 'every', 'queue', 'payload')) --@ safe keys-prefix
  redis.call('LPUSH', target, payload) --@ fails stored-name
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(every), id)
end
return #due
