-- Included by campaign_state.lua and record_result.lua: set KEYS[first..] (every key of a
-- campaign) to expire after the campaign's retention, its hash's 'retention' field in seconds;
-- a campaign hash without one leaves the keys as they are.
local function keep_for_retention(campaign, first)
  local retention = tonumber(redis.call('HGET', campaign, 'retention') or '')
  if retention then
    for i = first, #KEYS do
      redis.call('EXPIRE', KEYS[i], retention)
    end
  end
end
