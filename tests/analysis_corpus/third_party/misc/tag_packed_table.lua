--[[
  Moves an item between two lists named in a msgpacked table; the client builds both with the
  same board's tag: {"kanban:{<board>}:todo", "kanban:{<board>}:done"}; no KEYS (numkeys 0).
    ARGV[1] msgpack {from, to}, ARGV[2] item
]]
local lists = cmsgpack.unpack(ARGV[1])
local moved = redis.call('LREM', lists[1], 1, ARGV[2]) --@ fails keyless
if moved > 0 then
  redis.call('RPUSH', lists[2], ARGV[2]) --@ fails keyless
end
return moved
