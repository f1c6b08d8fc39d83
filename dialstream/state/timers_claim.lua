-- Claim the timers that are due, atomically: each stays in the set, due again at now + lease,
-- and goes to this caller only. The caller fires it, then acks it (timers_ack.lua); one whose
-- claimer died (or whose firing failed) is due again when its lease runs out, for any sweeper.
-- "Now" is the Redis server's clock: workers on many machines agree on it.
-- KEYS[1] sorted set: member -> due time (Unix seconds). ARGV[1] most to take; ARGV[2] lease (s).
-- Returns a flat list: member, its lease as stored (the ack's proof of ownership), member, ...
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]))
local claimed = {}
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), member)
  claimed[#claimed + 1] = member
  claimed[#claimed + 1] = redis.call('ZSCORE', KEYS[1], member)
end
return claimed
