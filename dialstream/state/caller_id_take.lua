-- Count one call on an exophone today, unless it has reached its daily cap.
-- KEYS[1] the exophone's counter for its day; ARGV[1] daily cap (0: none); ARGV[2] TTL seconds.
-- Returns the calls today including this one, or -1 when the cap is reached (nothing counted).
local cap = tonumber(ARGV[1])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if cap > 0 and used >= cap then
  return -1
end
local calls = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return calls
