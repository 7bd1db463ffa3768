-- Counts page views per page and in total, with plain names (one server assumed).
-- ARGV[1] page path
redis.call('INCR', 'views:' .. ARGV[1]) --@ fails fixed-prefix-id
redis.call('INCR', 'views:total') --@ fails fixed-key
redis.call('PFADD', 'visitors:today', ARGV[1]) --@ fails fixed-key
return 1
