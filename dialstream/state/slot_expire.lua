-- Included by slot_acquire.lua and slot_reclaim.lua: remove the slots expired by `now` (ms)
-- from the account's calls, each one's campaign set and the holders hash, and from the
-- extra sorted sets given (streams, say). Returns the ids removed.
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
  return stale
end
