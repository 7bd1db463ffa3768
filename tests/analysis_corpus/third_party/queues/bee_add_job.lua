--[[
  Bee-Queue-shaped job creation: the client passes the keys, all "bq:{<name>}:..." (one tag).
    KEYS[1] id counter  KEYS[2] jobs hash  KEYS[3] waiting list
    ARGV[1] job id or ""  ARGV[2] job data
]]
local jobId = ARGV[1]
if jobId == '' then
  jobId = '' .. redis.call('INCR', KEYS[1])
end
if redis.call('HEXISTS', KEYS[2], jobId) == 1 then
  return nil
end
redis.call('HSET', KEYS[2], jobId, ARGV[2])
redis.call('LPUSH', KEYS[3], jobId)
return jobId
