-- Records a score in the player's board and in the global top board (fixed name).
-- KEYS[1] the player's board. ARGV[1] player, ARGV[2] score
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', 'lb:global', 'GT', ARGV[2], ARGV[1]) --@ fails fixed-key
redis.call('ZREMRANGEBYRANK', 'lb:global', 0, -1001) --@ fails fixed-key
return redis.call('ZREVRANK', 'lb:global', ARGV[1]) --@ fails fixed-key
