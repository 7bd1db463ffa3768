-- XREAD: keys are the first half after STREAMS, ids the second half
local a = redis.call('XREAD', 'COUNT', 10, 'STREAMS', KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local b = redis.call('XREAD', 'COUNT', 10, 'STREAMS', KEYS[1], ARGV[3], '0', '0')
redis.call('XADD', KEYS[1], '*', 'field', ARGV[1])
local info = redis.call('XINFO', 'STREAM', ARGV[4])
return {a, b, info}
