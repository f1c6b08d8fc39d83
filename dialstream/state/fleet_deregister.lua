-- Remove one bot from the index and delete its hash, atomically.
-- KEYS[1] index, KEYS[2] the bot's hash; ARGV[1] url
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])
