--[[
  Bee-Queue-shaped stall check: jobs in the active list without a lock go back to waiting.
    KEYS[1] stallBlock key  KEYS[2] stalling set  KEYS[3] waiting list  KEYS[4] active list
    ARGV[1] stall interval (ms)
  Lock keys are "<jobs hash key>:<id>:lock"; the jobs hash is KEYS[4] with ':active' cut off.
]]
if redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]), 'NX') == false then
  return 0
end
local base = string.sub(KEYS[4], 1, -8)
local stalling = redis.call('SMEMBERS', KEYS[2])
local moved = 0
for _, id in ipairs(stalling) do
  if redis.call('EXISTS', base .. ':' .. id .. ':lock') == 0 then --@ safe tag-cut
    redis.call('LREM', KEYS[4], 0, id)
    redis.call('RPUSH', KEYS[3], id)
    moved = moved + 1
  end
end
redis.call('DEL', KEYS[2])
local active = redis.call('LRANGE', KEYS[4], 0, -1)
if #active > 0 then
  redis.call('SADD', KEYS[2], unpack(active))
end
return moved
