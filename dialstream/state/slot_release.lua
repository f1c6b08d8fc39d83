-- Give a slot back: from the account, its campaign and the streams. Idempotent.
-- KEYS[1] account calls; KEYS[2] streams; KEYS[3] hash slot id -> campaign id
-- ARGV[1] key prefix of campaign sets; ARGV[2] slot id.
-- Returns 1 if the slot was held and unexpired, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix, id = ARGV[1], ARGV[2]

local campaign = redis.call('HGET', KEYS[3], id)
if campaign then
  redis.call('ZREM', prefix .. campaign, id)
  redis.call('HDEL', KEYS[3], id)
end
redis.call('ZREM', KEYS[2], id)
local held = redis.call('ZSCORE', KEYS[1], id)
redis.call('ZREM', KEYS[1], id)
if held and tonumber(held) > now then
  return 1
end
return 0
