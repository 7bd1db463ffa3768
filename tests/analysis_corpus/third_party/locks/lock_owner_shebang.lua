#!lua
--[[
  Acquires a lock and records its owner beside it. The client names locks "{lock:<name>}".
    KEYS[1] the lock, ARGV[1] owner, ARGV[2] ttl (ms)
]]
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SET', KEYS[1] .. ':owner', ARGV[1], 'PX', ARGV[2]) --@ safe keys-prefix
  redis.call('INCR', KEYS[1] .. ':grants') --@ safe keys-prefix
  return 1
end
return 0
