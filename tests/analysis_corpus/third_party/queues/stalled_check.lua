--[[
  Finds jobs whose lock expired while active and moves them back to wait.
    KEYS[1] stalled set  KEYS[2] wait list  KEYS[3] active list  KEYS[4] stalled-check marker
    ARGV[1] max stalled count  ARGV[2] key prefix ("bull:{<queue>}:")  ARGV[3] timestamp
    ARGV[4] marker duration (ms)
]]
local rcall = redis.call
if rcall('EXISTS', KEYS[4]) == 1 then
  return {{}, {}}
end
rcall('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
local recovered, failed = {}, {}
local stalling = rcall('SMEMBERS', KEYS[1])
for _, jobId in ipairs(stalling) do
  local jobKey = ARGV[2] .. jobId
  if rcall('EXISTS', jobKey .. ':lock') == 0 then --@ safe argv-prefix
    local removed = rcall('LREM', KEYS[3], 1, jobId)
    if removed > 0 then
      local count = rcall('HINCRBY', jobKey, 'stalledCounter', 1) --@ safe argv-prefix
      if count > tonumber(ARGV[1]) then
        rcall('HSET', jobKey, 'failedReason', 'job stalled more than allowable limit') --@ safe argv-prefix
        failed[#failed + 1] = jobId
      else
        rcall('RPUSH', KEYS[2], jobId)
        recovered[#recovered + 1] = jobId
      end
    end
  end
end
rcall('DEL', KEYS[1])
local active = rcall('LRANGE', KEYS[3], 0, -1)
if #active > 0 then
  rcall('SADD', KEYS[1], unpack(active))
end
return {failed, recovered}
