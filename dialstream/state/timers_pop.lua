-- Take the timers that are due, atomically, so two sweepers never fire the same one.
-- KEYS[1] sorted set: member -> due time (Unix seconds). ARGV[1] most to take.
-- "Now" is the Redis server's clock: workers on many machines agree on it.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]))
if #due > 0 then
  redis.call('ZREM', KEYS[1], unpack(due))
end
return due
