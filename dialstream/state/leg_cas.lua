-- Compare-and-set a leg record: write only if nobody changed it since we read it.
-- KEYS[1] leg hash {version, doc}; KEYS[2] set of event_sids already applied to the leg.
-- ARGV[1] version read; ARGV[2] new doc (JSON); ARGV[3] event_sid ('' for none); ARGV[4] ttl seconds;
-- ARGV[5] the field of the events that would call for no action now, ARGV[6] those events (a line each);
-- ARGV[7...] the fields of the events the ingress kept beside the record: the record written
-- carries their effect (any kept since it was read moved the version), so they are removed.
-- Returns the new version, or -1 when the record moved on (the caller re-reads and retries).
local current = redis.call('HGET', KEYS[1], 'version') or '0'
if current ~= ARGV[1] then
  return -1
end
local version = tonumber(current) + 1
redis.call('HSET', KEYS[1], 'version', version, 'doc', ARGV[2], ARGV[5], ARGV[6])
if #ARGV > 6 then
  redis.call('HDEL', KEYS[1], unpack(ARGV, 7))
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
if ARGV[3] ~= '' then
  redis.call('SADD', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
return version
