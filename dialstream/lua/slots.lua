-- Concurrency slots shared by every worker: account calls, per-campaign calls, streams.
-- A slot is a member of sorted sets scored by its expiry (server time, ms); its holder
-- refreshes it, and an expired slot (its holder died or forgot) is reclaimed by whoever
-- looks next. Time is the Redis server's (TIME), never a worker's.
--
-- KEYS[1] account calls; KEYS[2] this campaign's calls ('' key unused); KEYS[3] streams;
-- KEYS[4] hash slot id -> campaign id (to find a slot's campaign set from its id alone)
-- ARGV[1] operation; ARGV[2] key prefix of campaign sets (campaign id appended); then:
--   acquire: ARGV[3] slot id, ARGV[4] campaign id, ARGV[5] ttl ms, ARGV[6] account cap,
--            ARGV[7] campaign cap, ARGV[8] streams cap (-1: no cap), ARGV[9] '1' to take a
--            stream slot too -> {1|0, blocked by ('' | 'account_calls' | 'campaign_calls' |
--            'streams'), account calls, campaign calls, streams} (counts after the decision)
--   refresh: ARGV[3] slot id, ARGV[4] ttl ms -> 1 if still held (now extended), else 0
--   release: ARGV[3] slot id -> 1 if it was held, else 0
--   counts:  -> {account calls, campaign calls, streams}
--   reclaim: -> the ids of the expired slots just removed
-- Campaign sets other than KEYS[2] are reached through the hash, so this script needs a
-- single Redis (not Cluster).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local prefix = ARGV[2]

-- Keys outlive their longest slot by a minute: stale slots are normally reclaimed (and
-- reported) by a script; key expiry only cleans up after an account that went quiet.
local function extend(key, ttl)
  local ms = ttl + 60000
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end

local function reclaim()
  local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, id in ipairs(stale) do
    local campaign = redis.call('HGET', KEYS[4], id)
    if campaign then
      redis.call('ZREM', prefix .. campaign, id)
      redis.call('HDEL', KEYS[4], id)
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if KEYS[2] ~= '' then
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  end
  return stale
end

local function live(key)
  if key == '' then
    return 0
  end
  return redis.call('ZCOUNT', key, string.format('(%d', now), '+inf')
end

if op == 'acquire' then
  reclaim()
  local id, campaign = ARGV[3], ARGV[4]
  local ttl = tonumber(ARGV[5])
  local expiry = now + ttl
  local with_stream = ARGV[9] == '1'
  local calls, in_campaign, streams = redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])
  if redis.call('ZSCORE', KEYS[1], id) then
    -- Already ours (a retried dial task): extend what it holds, take nothing twice.
    redis.call('ZADD', KEYS[1], 'XX', expiry, id)
    redis.call('ZADD', KEYS[2], 'XX', expiry, id)
    redis.call('ZADD', KEYS[3], 'XX', expiry, id)
    return {1, '', calls, in_campaign, streams}
  end
  local caps = {tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])}
  if caps[1] >= 0 and calls >= caps[1] then
    return {0, 'account_calls', calls, in_campaign, streams}
  end
  if caps[2] >= 0 and in_campaign >= caps[2] then
    return {0, 'campaign_calls', calls, in_campaign, streams}
  end
  if with_stream and caps[3] >= 0 and streams >= caps[3] then
    return {0, 'streams', calls, in_campaign, streams}
  end
  redis.call('ZADD', KEYS[1], expiry, id)
  redis.call('ZADD', KEYS[2], expiry, id)
  redis.call('HSET', KEYS[4], id, campaign)
  extend(KEYS[1], ttl)
  extend(KEYS[2], ttl)
  extend(KEYS[4], ttl)
  if with_stream then
    redis.call('ZADD', KEYS[3], expiry, id)
    extend(KEYS[3], ttl)
    streams = streams + 1
  end
  return {1, '', calls + 1, in_campaign + 1, streams}
end

if op == 'refresh' then
  local id = ARGV[3]
  local ttl = tonumber(ARGV[4])
  local score = redis.call('ZSCORE', KEYS[1], id)
  local campaign = redis.call('HGET', KEYS[4], id)
  if not score or tonumber(score) <= now or not campaign then
    return 0  -- expired: it may already count as someone else's; the holder must re-acquire
  end
  local expiry = now + ttl
  redis.call('ZADD', KEYS[1], 'XX', expiry, id)
  redis.call('ZADD', prefix .. campaign, 'XX', expiry, id)
  redis.call('ZADD', KEYS[3], 'XX', expiry, id)  -- XX: a stream given back early stays given back
  extend(KEYS[1], ttl)
  extend(prefix .. campaign, ttl)
  extend(KEYS[3], ttl)
  extend(KEYS[4], ttl)
  return 1
end

if op == 'release' then
  local id = ARGV[3]
  local campaign = redis.call('HGET', KEYS[4], id)
  if campaign then
    redis.call('ZREM', prefix .. campaign, id)
    redis.call('HDEL', KEYS[4], id)
  end
  redis.call('ZREM', KEYS[3], id)
  local held = redis.call('ZSCORE', KEYS[1], id)
  redis.call('ZREM', KEYS[1], id)
  if held and tonumber(held) > now then
    return 1
  end
  return 0
end

if op == 'counts' then
  return {live(KEYS[1]), live(KEYS[2]), live(KEYS[3])}
end

if op == 'reclaim' then
  return reclaim()
end

return redis.error_reply('slots.lua: unknown operation ' .. op)
