-- Emit one webhook message to every endpoint that wants it: the account's and the campaign's.
-- KEYS[1] set of the account's endpoint ids; KEYS[2] set of the campaign's; KEYS[3] due sorted set
-- ARGV[1] message id; ARGV[2] event type; ARGV[3] body JSON; ARGV[4] now (s); ARGV[5] TTL (s);
-- ARGV[6..8] the prefixes of an endpoint's, a delivery's and a message's keys (dialstream.state.keys)
-- A delivery (message, endpoint) is created once: emitting the same message again (a worker
-- re-running after a crash) changes nothing, and the first body stays. Returns deliveries created.
local ids = redis.call('SUNION', KEYS[1], KEYS[2])
local created = 0
for _, id in ipairs(ids) do
  local events = redis.call('HGET', ARGV[6] .. id, 'events')
  if events and (events == '*' or string.find(',' .. events .. ',', ',' .. ARGV[2] .. ',', 1, true)) then
    local delivery = ARGV[1] .. '.' .. id
    local key = ARGV[7] .. delivery
    if redis.call('HSETNX', key, 'msg', ARGV[1]) == 1 then
      redis.call('HSET', key, 'id', delivery, 'endpoint', id, 'type', ARGV[2], 'attempts', 0,
                 'created_at', ARGV[4], 'state', 'pending')
      redis.call('EXPIRE', key, ARGV[5])
      redis.call('SET', ARGV[8] .. ARGV[1], ARGV[3], 'EX', ARGV[5], 'NX')
      redis.call('ZADD', KEYS[3], ARGV[4], delivery)
      created = created + 1
    end
  end
end
return created
