--[[
  Acquires a lock and indexes it under its owner. The client passes the owner index's key whole,
  built with the lock's tag: "{lock:<name>}:owners".
    KEYS[1] the lock ("{lock:<name>}"), ARGV[1] owner, ARGV[2] ttl (ms), ARGV[3] owner index key
]]
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
redis.call('ZADD', ARGV[3], ARGV[2], ARGV[1]) --@ safe argv-whole
redis.call('PEXPIRE', ARGV[3], ARGV[2]) --@ safe argv-whole
return 1
