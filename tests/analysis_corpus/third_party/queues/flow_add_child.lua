--[[
  Adds a child job to a flow. The parent's dependency set is KEYS[1]; the client passes the child's
  job key and its queue's wait list whole (children live in the parent's queue: one hash tag).
    KEYS[1] the parent's ':dependencies' set ("bull:{<queue>}:<parent>:dependencies")
    ARGV[1] msgpack {childKey, childId, data}
    ARGV[2] the child queue's wait list ("bull:{<queue>}:wait")
]]
local child = cmsgpack.unpack(ARGV[1])
redis.call('HSET', child[1], 'data', child[3], 'parentKey', KEYS[1]) --@ safe argv-packed
redis.call('SADD', KEYS[1], child[1])
redis.call('LPUSH', ARGV[2], child[2]) --@ safe argv-whole
return #child
