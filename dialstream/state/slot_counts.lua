-- Live (unexpired) slots, read on the server's clock. Read-only.
-- KEYS[1] account calls; KEYS[2] a campaign's calls ('' for none); KEYS[3] streams.
-- Returns {account calls, campaign calls, streams}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- '(' excludes slots expiring exactly now; %d keeps every digit (tostring would round).
local after = string.format('(%d', now)

local function live(key)
  if key == '' then
    return 0
  end
  return redis.call('ZCOUNT', key, after, '+inf')
end

return {live(KEYS[1]), live(KEYS[2]), live(KEYS[3])}
