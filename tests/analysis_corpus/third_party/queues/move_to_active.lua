--[[
  Takes the next job from the wait list and locks it for a worker.

    KEYS[1] wait list
    KEYS[2] active list
    KEYS[3] events stream
    KEYS[4] rate limiter counter

    ARGV[1] key prefix ("bull:{<queue>}:", the queue's hash tag inside)
    ARGV[2] lock token
    ARGV[3] lock duration in ms
    ARGV[4] timestamp
]]
local rcall = redis.call
local limit = rcall('GET', KEYS[4])
if limit and tonumber(limit) <= 0 then
  return {0, rcall('PTTL', KEYS[4])}
end
local jobId = rcall('RPOPLPUSH', KEYS[1], KEYS[2])
if not jobId then
  return {0, 0}
end
local jobKey = ARGV[1] .. jobId
local lockKey = jobKey .. ':lock'
rcall('SET', lockKey, ARGV[2], 'PX', ARGV[3]) --@ safe argv-prefix
rcall('HSET', jobKey, 'processedOn', ARGV[4]) --@ safe argv-prefix
rcall('HINCRBY', jobKey, 'attemptsStarted', 1) --@ safe argv-prefix
rcall('XADD', KEYS[3], '*', 'event', 'active', 'jobId', jobId)
return {1, rcall('HGETALL', jobKey)} --@ safe argv-prefix
