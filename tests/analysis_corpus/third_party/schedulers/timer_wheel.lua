-- A timer wheel that also records pending jobs; both use fixed, tagged names of their own.
-- ARGV[1] timer id, ARGV[2] fire at (ms)
redis.call('ZADD', '{timers}:wheel', ARGV[2], ARGV[1]) --@ fails tags-differ
redis.call('SADD', '{jobs}:pending', ARGV[1]) --@ fails tags-differ
return 1
