-- Count a dialled call as awaiting its in-call actions (idempotent: re-adding extends it).
-- The set is scored by expiry (server time, us), so a call whose events were lost stops
-- holding budget back by itself.
-- KEYS[1] the set; ARGV[1] call id; ARGV[2] ttl (us). Returns the live entries after adding.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < math.floor(ttl / 1000) + 1000 then
  redis.call('PEXPIRE', KEYS[1], math.floor(ttl / 1000) + 1000)
end
return redis.call('ZCARD', KEYS[1])
