--[[
  Deletes every key of a paused queue, in batches (SCAN on the queue's prefix).
    KEYS[1] meta hash
    ARGV[1] key prefix ("bull:{<queue>}:"): every key of the queue starts with it
    ARGV[2] cursor
    ARGV[3] batch size
]]
if redis.call('HEXISTS', KEYS[1], 'paused') == 0 then
  return redis.error_reply('QUEUE_NOT_PAUSED')
end
local reply = redis.call('SCAN', ARGV[2], 'MATCH', ARGV[1] .. '*', 'COUNT', ARGV[3])
local names = reply[2]
if #names > 0 then
  redis.call('DEL', unpack(names)) --@ safe unpack-many
end
return reply[1]
