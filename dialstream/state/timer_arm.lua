-- Included by timers_add.lua and ingress_accept.lua: arm timer `member` in sorted set `key`,
-- due `seconds` from now on the Redis server's clock (every machine's timers agree).
local function arm_timer(key, member, seconds)
  local t = redis.call('TIME')
  return redis.call('ZADD', key, tonumber(t[1]) + tonumber(t[2]) / 1e6 + tonumber(seconds), member)
end
