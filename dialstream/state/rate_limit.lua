-- Sliding-window request budget shared by every worker: at most `limit` grants in any
-- `window`, with dials held back so in-call actions always find room.
-- Time is the Redis server's (TIME), never a worker's: one clock for every machine.
-- Scores are microseconds; they are only ever passed to redis.call as numbers (which Redis
-- formats exactly) and never concatenated into strings (Lua's tostring keeps 14 digits).
--
-- KEYS[1] sorted set of grants: member a unique token, score its server time (us)
-- KEYS[2] sorted set of calls awaiting in-call actions: member call id, score expiry (us)
-- ARGV[1] limit; ARGV[2] window (us); ARGV[3] kind: 'action' or 'dial'; ARGV[4] unique token
-- ARGV[5] actions per call; ARGV[6] fixed headroom; ARGV[7] call id to register on a granted
-- dial ('' for none); ARGV[8] how long a call may await its actions (us); ARGV[9] '1' to only
-- look (the answer a request would get now, nothing granted)
-- Returns {granted 0|1, wait (us until a slot could free; -1 unknown), server time (us),
--          grants in the window after this decision, reserve applied (0 for actions)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local kind = ARGV[3]

-- A grant counts while now < its time + window: the window is (now - window, now].
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])

local allowed = limit
local reserve = 0
if kind == 'dial' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local awaiting = redis.call('ZCARD', KEYS[2])
  -- The call about to be dialled will need its actions too (unless already counted).
  if ARGV[7] ~= '' and not redis.call('ZSCORE', KEYS[2], ARGV[7]) then
    awaiting = awaiting + 1
  end
  reserve = tonumber(ARGV[6]) + tonumber(ARGV[5]) * awaiting
  allowed = limit - reserve
end

if used < allowed and ARGV[9] == '1' then
  return {1, 0, now, used, reserve}
end
if used < allowed then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1000)
  if kind == 'dial' and ARGV[7] ~= '' then
    local ttl = tonumber(ARGV[8])
    redis.call('ZADD', KEYS[2], now + ttl, ARGV[7])
    if redis.call('PTTL', KEYS[2]) < math.floor(ttl / 1000) + 1000 then
      redis.call('PEXPIRE', KEYS[2], math.floor(ttl / 1000) + 1000)
    end
  end
  return {1, 0, now, used + 1, reserve}
end

-- Refused: the grant that has to leave the window first is the (used - allowed + 1)-th oldest.
if allowed <= 0 then
  return {0, -1, now, used, reserve}  -- only fewer awaiting calls can open room for dials
end
local nth = redis.call('ZRANGE', KEYS[1], used - allowed, used - allowed, 'WITHSCORES')
local wait = tonumber(nth[2]) + window - now
if wait < 0 then
  wait = 0
end
return {0, wait, now, used, reserve}
