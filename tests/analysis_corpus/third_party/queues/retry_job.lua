--[[
  Puts a failed job back to wait.
    KEYS[1] failed zset  KEYS[2] wait list  KEYS[3] events
    ARGV[1] key prefix ("bull:{<queue>}:")  ARGV[2] job id  ARGV[3] timestamp
]]
local rcall = redis.call
local jobKey = ARGV[1] .. ARGV[2]
if rcall('EXISTS', jobKey) == 0 then --@ safe argv-prefix
  return -1
end
rcall('ZREM', KEYS[1], ARGV[2])
rcall('RPUSH', KEYS[2], ARGV[2])
rcall('HDEL', jobKey, 'finishedOn', 'failedReason') --@ safe argv-prefix
rcall('HINCRBY', jobKey, 'retried', 1) --@ safe argv-prefix
rcall('DEL', jobKey .. ':lock') --@ safe argv-prefix
rcall('XADD', KEYS[3], '*', 'event', 'waiting', 'jobId', ARGV[2], 'prev', 'failed')
return 0
