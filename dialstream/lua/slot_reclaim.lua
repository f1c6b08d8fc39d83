-- Remove expired slots of every campaign now (slot_acquire.lua does the same first thing).
-- KEYS[1] account calls; KEYS[2] streams; KEYS[3] hash slot id -> campaign id
-- ARGV[1] key prefix of campaign sets.
-- Returns the ids of the slots removed, for the logs.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix = ARGV[1]

local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, sid in ipairs(stale) do
  local owner = redis.call('HGET', KEYS[3], sid)
  if owner then
    redis.call('ZREM', prefix .. owner, sid)
    redis.call('HDEL', KEYS[3], sid)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return stale
