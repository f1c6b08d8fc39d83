-- Store a contact's latest call record; a final one also counts its outcome and, when it is
-- the campaign's last, marks the campaign done.
-- KEYS[1] results: hash contact -> record JSON; KEYS[2] done: set of contacts with a final
-- record; KEYS[3] counts hash; KEYS[4] the campaign hash; KEYS[5] set of running campaigns
-- ARGV[1] contact id; ARGV[2] record JSON; ARGV[3] '1' final, '0' interim (a redial is due);
-- ARGV[4] outcome; ARGV[5] campaign id; ARGV[6] now (s)
-- KEYS[6..] every key of the campaign: each record sets their TTL to the campaign's retention
-- (its hash's 'retention' field, seconds), so a campaign's data expires that long after its
-- last call, finished or not.
-- A final record replaces an earlier final one (a contact recorded canceled whose call was in
-- fact being placed ends with its real outcome), and the outcome counts follow; an interim
-- record never replaces a final one. Returns 1 if written, 0 if not.
local contact = ARGV[1]
--#include campaign_retention.lua
local function touched(written)
  keep_for_retention(KEYS[4], 6)
  return written
end
local was_done = redis.call('SISMEMBER', KEYS[2], contact) == 1
if ARGV[3] ~= '1' then
  if was_done then
    return touched(0)
  end
  redis.call('HSET', KEYS[1], contact, ARGV[2])
  return touched(1)
end
if was_done then
  local previous = redis.call('HGET', KEYS[1], contact)
  if previous then
    local outcome = cjson.decode(previous).outcome
    if type(outcome) == 'string' then
      redis.call('HINCRBY', KEYS[3], 'outcome:' .. outcome, -1)
    end
  end
else
  redis.call('SADD', KEYS[2], contact)
end
redis.call('HINCRBY', KEYS[3], 'outcome:' .. ARGV[4], 1)
redis.call('HSET', KEYS[1], contact, ARGV[2])
if not was_done then
  local state = redis.call('HGET', KEYS[4], 'state')
  local total = tonumber(redis.call('HGET', KEYS[4], 'total') or '-1')
  if (state == 'running' or state == 'paused') and redis.call('SCARD', KEYS[2]) >= total then
    redis.call('HSET', KEYS[4], 'state', 'done', 'done_at', ARGV[6])
    redis.call('SREM', KEYS[5], ARGV[5])
  end
end
return touched(1)
