-- Extend a held slot (the holder's heartbeat). A slot that already expired is not revived:
-- it may count as someone else's by now, so its holder must acquire again.
-- KEYS[1] account calls; KEYS[2] streams; KEYS[3] hash slot id -> campaign id
-- ARGV[1] key prefix of campaign sets; ARGV[2] slot id; ARGV[3] ttl ms.
-- Returns 1 if the slot was held and is now extended, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, id = ARGV[1], ARGV[2]
local ttl = tonumber(ARGV[3])

local score = redis.call('ZSCORE', KEYS[1], id)
local campaign = redis.call('HGET', KEYS[3], id)
if not score or tonumber(score) <= now or not campaign then
  return 0
end

local function extend(key)
  local ms = ttl + 60000  -- keys outlive their longest slot: see slot_acquire.lua
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end

local expiry = now + ttl
redis.call('ZADD', KEYS[1], 'XX', expiry, id)
redis.call('ZADD', prefix .. campaign, 'XX', expiry, id)
redis.call('ZADD', KEYS[2], 'XX', expiry, id)  -- XX: a stream given back early stays given back
extend(KEYS[1])
extend(prefix .. campaign)
extend(KEYS[2])
extend(KEYS[3])
return 1
