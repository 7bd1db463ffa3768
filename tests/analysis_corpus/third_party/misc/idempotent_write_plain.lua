--[[
  Applies a write once per idempotency key; written for one server, the idempotency records are
  "idem:<uuid>" and the resource key is the caller's, "balance:<account>".
    ARGV[1] resource key, ARGV[2] request uuid, ARGV[3] amount
]]
if redis.call('SET', 'idem:' .. ARGV[2], 1, 'NX', 'EX', 86400) then --@ fails fixed-prefix-id
  return redis.call('INCRBY', ARGV[1], ARGV[3]) --@ fails argv-whole
end
return false
