--[[
  A fair lock: waiters queue in a list and a timeout zset (Redisson-shaped).
  Keys of one lock share its tag: "{<name>}", "redisson_lock_queue:{<name>}", ...
    KEYS[1] lock hash, KEYS[2] waiters list, KEYS[3] timeouts zset
    ARGV[1] lease (ms), ARGV[2] owner id, ARGV[3] wait (ms), ARGV[4] now (ms)
]]
while true do
  local first = redis.call('LINDEX', KEYS[2], 0)
  if first == false then break end
  local timeout = tonumber(redis.call('ZSCORE', KEYS[3], first))
  if timeout > tonumber(ARGV[4]) then break end
  redis.call('ZREM', KEYS[3], first)
  redis.call('LPOP', KEYS[2])
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  local head = redis.call('LINDEX', KEYS[2], 0)
  if head == false or head == ARGV[2] then
    redis.call('LPOP', KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[2])
    redis.call('HSET', KEYS[1], ARGV[2], 1)
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    return nil
  end
end
local last = redis.call('LINDEX', KEYS[2], -1)
local ttl = redis.call('PTTL', KEYS[1])
if last ~= false and last ~= ARGV[2] then
  ttl = tonumber(redis.call('ZSCORE', KEYS[3], last)) - tonumber(ARGV[4])
end
redis.call('ZADD', KEYS[3], ttl + tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[2])
return ttl
