-- Read a leg for a compare-and-set, in one round trip.
-- KEYS[1] leg hash {version, doc, sent}; KEYS[2] set of event_sids applied to the leg.
-- ARGV[1] event_sid being applied ('' for none).
-- Returns {version or false, doc or false, sent or false, 1 if the event was applied before}.
local fields = redis.call('HMGET', KEYS[1], 'version', 'doc', 'sent')
local applied = 0
if ARGV[1] ~= '' then
  applied = redis.call('SISMEMBER', KEYS[2], ARGV[1])
end
return {fields[1], fields[2], fields[3], applied}
