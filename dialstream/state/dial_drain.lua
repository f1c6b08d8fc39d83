-- Take a campaign's queued contacts and leases whatever their time: a canceled campaign's.
-- A drained lease's holder finds its token gone and leaves the contact alone.
-- KEYS[1] due; KEYS[2] leased; KEYS[3] leases. ARGV[1] most items to take.
-- Returns a flat list: member, time, member, time, ...
local limit = tonumber(ARGV[1])
local taken = redis.call('ZPOPMIN', KEYS[1], limit)
if #taken < 2 * limit then
  local leased = redis.call('ZRANGE', KEYS[2], 0, limit - #taken / 2 - 1, 'WITHSCORES')
  for i = 1, #leased, 2 do
    redis.call('ZREM', KEYS[2], leased[i])
    redis.call('HDEL', KEYS[3], leased[i])
    taken[#taken + 1] = leased[i]
    taken[#taken + 1] = leased[i + 1]
  end
end
return taken
