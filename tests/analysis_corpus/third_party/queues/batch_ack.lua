--[[
  Acknowledges a batch of messages of several queues at once. The client passes, packed as JSON,
  the processing-list key of each message (whole keys of different queues, each with its own tag).
    ARGV[1] JSON array of {list = "<processing list key>", id = "<message id>"}
]]
local acks = cjson.decode(ARGV[1])
local done = 0
for _, ack in ipairs(acks) do
  done = done + redis.call('LREM', ack.list, 1, ack.id) --@ fails argv-packed
end
return done
