-- The deployment's shared secret KEYS[1], created from ARGV[1] if it does not exist yet.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
