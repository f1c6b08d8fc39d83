-- Calls dialled whose in-call actions are still to come: a sorted set scored by expiry
-- (server time, us), so a call whose events were lost stops holding budget back by itself.
-- KEYS[1] the set; ARGV[1] 'add' or 'count'; ARGV[2] call id; ARGV[3] ttl (us).
-- Returns the number of live entries after the operation.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[1] == 'add' then
  local ttl = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
  if redis.call('PTTL', KEYS[1]) < math.floor(ttl / 1000) + 1000 then
    redis.call('PEXPIRE', KEYS[1], math.floor(ttl / 1000) + 1000)
  end
end
return redis.call('ZCARD', KEYS[1])
