--[[
  Moves an active job to the completed or failed set, and trims old finished jobs.

    KEYS[1] active list
    KEYS[2] finished set (completed or failed)
    KEYS[3] events stream
    KEYS[4] job hash ("bull:{<queue>}:<id>")

    ARGV[1] job id
    ARGV[2] timestamp
    ARGV[3] result (JSON)
    ARGV[4] lock token
    ARGV[5] how many finished jobs to keep
    ARGV[6] key prefix of the queue ("bull:{<queue>}:")
]]
local rcall = redis.call
local lockKey = KEYS[4] .. ':lock'
if rcall('GET', lockKey) ~= ARGV[4] then --@ safe keys-prefix
  return -2
end
rcall('DEL', lockKey) --@ safe keys-prefix
rcall('LREM', KEYS[1], -1, ARGV[1])
rcall('ZADD', KEYS[2], ARGV[2], ARGV[1])
rcall('HSET', KEYS[4], 'finishedOn', ARGV[2], 'returnvalue', ARGV[3])
local keep = tonumber(ARGV[5])
if keep and keep >= 0 then
  local old = rcall('ZREVRANGE', KEYS[2], keep, -1)
  for _, id in ipairs(old) do
    local oldKey = ARGV[6] .. id
    rcall('DEL', oldKey, oldKey .. ':logs') --@ safe argv-prefix
  end
  if #old > 0 then
    rcall('ZREM', KEYS[2], unpack(old))
  end
end
rcall('XADD', KEYS[3], '*', 'event', 'completed', 'jobId', ARGV[1])
return 0
