-- Count a stream against a bot before its next heartbeat reports it, so that the
-- selections made between two heartbeats spread over the fleet.
-- KEYS[1] the bot's hash. Never recreates a hash that expired meanwhile.
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('HINCRBY', KEYS[1], 'load', 1)
end
return -1
