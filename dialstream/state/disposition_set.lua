-- Set a call's disposition; the campaign's count per code follows the call's last one.
-- KEYS[1] the leg's disposition; KEYS[2] the campaign's counts hash ("" when the leg is not a campaign's)
-- ARGV[1] disposition JSON; ARGV[2] its code; ARGV[3] TTL seconds.
-- Returns the code it replaced, or false.
local previous = redis.call('GET', KEYS[1])
local previous_code = false
if previous then
  previous_code = cjson.decode(previous)['code']
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
if KEYS[2] ~= '' and previous_code ~= ARGV[2] then
  if previous_code then
    redis.call('HINCRBY', KEYS[2], 'disposition:' .. previous_code, -1)
  end
  redis.call('HINCRBY', KEYS[2], 'disposition:' .. ARGV[2], 1)
end
return previous_code
