-- Adjusts a usage counter up or down; the counter's key is built from the client id (one server).
-- KEYS[1] the audit stream. ARGV[1] 'up' or 'down', ARGV[2] client id, ARGV[3] amount
local command = ARGV[1] == 'up' and 'INCRBY' or 'DECRBY'
local value = redis.call(command, 'usage:' .. ARGV[2], ARGV[3]) --@ fails fixed-prefix-id
redis.call('XADD', KEYS[1], '*', 'client', ARGV[2], 'delta', ARGV[3])
return value
