-- Take a running campaign's due contacts for dialing, atomically, each leased under a token,
-- so two pollers never take the same one and pause or cancel act at once.
-- KEYS[1] due: member -> not-before time (s); KEYS[2] leased: member -> lease expiry (s);
-- KEYS[3] leases: hash member -> token; KEYS[4] the campaign hash (field state)
-- ARGV[1] now (s); ARGV[2] most items to take; ARGV[3] lease seconds; ARGV[4] token prefix
-- A lease that ran out (its worker died before the leg existed) puts its contact back first,
-- due at the lease's end, and its token stops being valid.
-- Returns a flat list: member, due time, token, member, due time, token, ...
if redis.call('HGET', KEYS[4], 'state') ~= 'running' then
  return {}
end
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[3])

local expired = redis.call('ZRANGE', KEYS[2], '-inf', now, 'BYSCORE', 'WITHSCORES')
for i = 1, #expired, 2 do
  redis.call('ZADD', KEYS[1], tonumber(expired[i + 1]), expired[i])
  redis.call('ZREM', KEYS[2], expired[i])
  redis.call('HDEL', KEYS[3], expired[i])
end

local items = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]), 'WITHSCORES')
local taken = {}
for i = 1, #items, 2 do
  local token = ARGV[4] .. ':' .. ((i + 1) / 2)
  redis.call('ZREM', KEYS[1], items[i])
  redis.call('ZADD', KEYS[2], now + lease, items[i])
  redis.call('HSET', KEYS[3], items[i], token)
  taken[#taken + 1] = items[i]
  taken[#taken + 1] = items[i + 1]
  taken[#taken + 1] = token
end
return taken
