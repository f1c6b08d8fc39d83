-- After an outbox was handed to Celery: remember which actions went out, and arm their timers.
-- KEYS[1] leg hash; KEYS[2] timers sorted set.
-- ARGV[1] version the outbox was committed at; ARGV[2] JSON list of the dispatched action ids;
-- then pairs (timer member, seconds from now) to arm on the Redis server's clock.
-- If the leg has moved on, its newer doc carries the outbox itself; sending again is
-- harmless (each action is claimed once), so nothing is marked.
if redis.call('HGET', KEYS[1], 'version') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'sent', ARGV[2])
end
if #ARGV > 2 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
  for i = 3, #ARGV, 2 do
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[i + 1]), ARGV[i])
  end
end
return 1
