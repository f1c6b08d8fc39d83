-- Arm a timer ARGV[2] seconds from now on the Redis server's clock.
-- KEYS[1] sorted set of timers; ARGV[1] member.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
