--[[
  Claims the scheduler lease; the lease key is derived from the schedule key by replacing its last
  segment. KEYS[1] is "{sched:<name>}:schedule".
    ARGV[1] instance id, ARGV[2] ttl (ms)
]]
local leaseKey = string.gsub(KEYS[1], ':schedule$', ':lease')
local holder = redis.call('GET', leaseKey) --@ safe tag-cut
if holder and holder ~= ARGV[1] then
  return 0
end
redis.call('SET', leaseKey, ARGV[1], 'PX', ARGV[2]) --@ safe tag-cut
return 1
