-- Move a campaign to another state if it is in one of the allowed ones, keeping the set of
-- running campaigns (what the dial pollers serve) in step.
-- KEYS[1] the campaign hash; KEYS[2] set of running campaigns
-- ARGV[1] campaign id; ARGV[2] target state; ARGV[3] now (s); ARGV[4..] allowed current states
-- KEYS[3..] every key of the campaign: a move sets their TTL to the campaign's retention (its
-- hash's 'retention' field, seconds), so a finished or canceled campaign expires that long after.
-- Returns {state before, 1 if moved else 0}, or {false, 0} for an unknown campaign.
--#include campaign_retention.lua
local current = redis.call('HGET', KEYS[1], 'state')
if not current then
  return {false, 0}
end
for i = 4, #ARGV do
  if current == ARGV[i] then
    redis.call('HSET', KEYS[1], 'state', ARGV[2], ARGV[2] .. '_at', ARGV[3])
    if ARGV[2] == 'running' then
      redis.call('SADD', KEYS[2], ARGV[1])
    else
      redis.call('SREM', KEYS[2], ARGV[1])
    end
    keep_for_retention(KEYS[1], 3)
    return {current, 1}
  end
end
return {current, 0}
