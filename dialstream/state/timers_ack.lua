-- Ack fired timers: remove each one still under the caller's lease. A timer whose lease ran
-- out meanwhile was claimed again by another sweeper, which acks it itself.
-- KEYS[1] sorted set of timers. ARGV: member, lease as claimed (timers_claim.lua), member, ...
-- Returns the number removed.
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
