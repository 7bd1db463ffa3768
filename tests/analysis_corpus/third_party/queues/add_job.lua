--[[
  Adds a job to a queue (a BullMQ-shaped queue library).

  Every key of one queue carries the queue's hash tag: the client builds the prefix
  "bull:{<queue>}:" and passes it in ARGV[1]; KEYS are built from the same prefix.

    KEYS[1] 'wait' list
    KEYS[2] 'meta' hash
    KEYS[3] 'id' counter
    KEYS[4] 'events' stream
    KEYS[5] 'delayed' sorted set

    ARGV[1] key prefix of the queue ("bull:{emails}:")
    ARGV[2] msgpacked options: {jobId, timestamp, delay, parentKey, dedupId}
    ARGV[3] job data (JSON)
]]
local rcall = redis.call
local opts = cmsgpack.unpack(ARGV[2])
local jobId = opts[1]
if jobId == nil or jobId == '' then
  jobId = tostring(rcall('INCR', KEYS[3]))
end
local jobKey = ARGV[1] .. jobId
if rcall('EXISTS', jobKey) == 1 then --@ safe argv-prefix
  return jobId
end
if opts[5] then
  local dedupKey = ARGV[1] .. 'de:' .. opts[5]
  local existing = rcall('GET', dedupKey) --@ safe argv-prefix
  if existing then
    return existing
  end
  rcall('SET', dedupKey, jobId, 'PX', 60000) --@ safe argv-prefix
end
rcall('HSET', jobKey, 'data', ARGV[3], 'timestamp', opts[2], 'delay', opts[3] or 0) --@ safe argv-prefix
if opts[4] then
  -- parents live in the same queue by this library's rule
  rcall('SADD', opts[4] .. ':dependencies', jobKey) --@ safe argv-packed
  rcall('HSET', jobKey, 'parentKey', opts[4]) --@ safe argv-prefix
end
local delay = tonumber(opts[3] or 0)
if delay > 0 then
  rcall('ZADD', KEYS[5], tonumber(opts[2]) + delay, jobId)
else
  rcall('LPUSH', KEYS[1], jobId)
end
rcall('XADD', KEYS[4], 'MAXLEN', '~', 10000, '*', 'event', 'added', 'jobId', jobId)
return jobId
