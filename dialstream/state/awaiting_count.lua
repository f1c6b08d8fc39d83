-- Calls awaiting their in-call actions, expired entries dropped first.
-- KEYS[1] the set (member call id, score expiry on the server's clock, us).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
