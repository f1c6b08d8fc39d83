-- Take the redials that are due, atomically, so two pollers never take the same one.
-- KEYS[1] due: sorted set member -> due time (s); KEYS[2] leased: member -> lease expiry (s)
-- ARGV[1] now (s); ARGV[2] most items to take; ARGV[3] lease seconds (0: no lease, the
-- items are simply removed).
-- With a lease, taken items wait in KEYS[2] until acknowledged (ZREM by the caller); a
-- lease that runs out (the poller died before enqueueing them) puts the item back as due.
-- Returns a flat list: member, due time, member, due time, ...
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[3])

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES')
for i = 1, #expired, 2 do
  redis.call('ZADD', KEYS[1], tonumber(expired[i + 1]), expired[i])
  redis.call('ZREM', KEYS[2], expired[i])
end

local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #items, 2 do
  redis.call('ZREM', KEYS[1], items[i])
  if lease > 0 then
    redis.call('ZADD', KEYS[2], now + lease, items[i])
  end
end
return items
