-- Claim a one-shot job (sending one leg action) for one Celery task id.
-- The same task id may claim again (a Celery retry of the same message); another may not.
-- KEYS[1] claim key; ARGV[1] task id; ARGV[2] ttl seconds. Returns 1 when the caller owns it.
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
if owner == ARGV[1] then
  return 1
end
return 0
