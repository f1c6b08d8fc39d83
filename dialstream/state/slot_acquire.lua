-- Take a concurrency slot if every cap has room, reclaiming expired slots first.
-- A slot is a member of sorted sets scored by its expiry on the server's clock (ms); its
-- holder refreshes it (slot_refresh.lua), and one whose holder died is reclaimed here.
--
-- KEYS[1] account calls; KEYS[2] this campaign's calls; KEYS[3] streams;
-- KEYS[4] hash slot id -> campaign id (finds a slot's campaign set from its id alone)
-- ARGV[1] key prefix of campaign sets (campaign id appended); ARGV[2] slot id;
-- ARGV[3] campaign id; ARGV[4] ttl ms; ARGV[5] account cap; ARGV[6] campaign cap;
-- ARGV[7] streams cap (-1: no cap); ARGV[8] '1' to take a stream slot too.
-- Returns {1|0, blocked by ('' | 'account_calls' | 'campaign_calls' | 'streams'),
--          account calls, campaign calls, streams} (live counts after the decision).
-- Other campaigns' sets are reached through the hash: a single Redis, not Cluster.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, id, campaign = ARGV[1], ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[4])

-- Keys outlive their longest slot by a minute: stale slots are normally reclaimed here;
-- key expiry only cleans up after an account that went quiet.
local function extend(key)
  local ms = ttl + 60000
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end

-- Remove the slots expired by `now` (ms) from the account's calls, each one's campaign set
-- and the holders hash, and from the extra sorted sets given (streams, say).
local function expire_slots(calls, holders, prefix, now, ...)
  local stale = redis.call('ZRANGEBYSCORE', calls, '-inf', now)
  for _, sid in ipairs(stale) do
    local owner = redis.call('HGET', holders, sid)
    if owner then
      redis.call('ZREM', prefix .. owner, sid)
      redis.call('HDEL', holders, sid)
    end
  end
  redis.call('ZREMRANGEBYSCORE', calls, '-inf', now)
  for _, key in ipairs({...}) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  end
end

-- Expired slots stop counting before any cap is checked.
expire_slots(KEYS[1], KEYS[4], prefix, now, KEYS[2], KEYS[3])

local expiry = now + ttl
local calls = redis.call('ZCARD', KEYS[1])
local in_campaign = redis.call('ZCARD', KEYS[2])
local streams = redis.call('ZCARD', KEYS[3])
if redis.call('ZSCORE', KEYS[1], id) then
  -- Already ours (a retried dial task): extend what it holds, take nothing twice.
  redis.call('ZADD', KEYS[1], 'XX', expiry, id)
  redis.call('ZADD', KEYS[2], 'XX', expiry, id)
  redis.call('ZADD', KEYS[3], 'XX', expiry, id)
  return {1, '', calls, in_campaign, streams}
end

local account_cap, campaign_cap, streams_cap = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local with_stream = ARGV[8] == '1'
if account_cap >= 0 and calls >= account_cap then
  return {0, 'account_calls', calls, in_campaign, streams}
end
if campaign_cap >= 0 and in_campaign >= campaign_cap then
  return {0, 'campaign_calls', calls, in_campaign, streams}
end
if with_stream and streams_cap >= 0 and streams >= streams_cap then
  return {0, 'streams', calls, in_campaign, streams}
end

redis.call('ZADD', KEYS[1], expiry, id)
redis.call('ZADD', KEYS[2], expiry, id)
redis.call('HSET', KEYS[4], id, campaign)
extend(KEYS[1])
extend(KEYS[2])
extend(KEYS[4])
if with_stream then
  redis.call('ZADD', KEYS[3], expiry, id)
  extend(KEYS[3])
  streams = streams + 1
end
return {1, '', calls + 1, in_campaign + 1, streams}
