-- Claim the sending of one leg action for one Celery task id.
-- The same task id may claim again (a Celery retry of the same message); another may not.
-- A late message (re-delivered long after, retried after a 429, overtaken) must not act on a
-- leg that has moved on: nothing is sent to an ended leg, once the bot's stream is live
-- neither another stream nor a greeting, hold or fallback message is started, and a stream
-- attempt that a later one superseded (its start was given up for lost) is not started.
-- KEYS[1] claim key; KEYS[2] the leg hash {version, doc}.
-- ARGV[1] task id; ARGV[2] ttl seconds; ARGV[3] action kind; ARGV[4] action id.
-- Returns 1 when the caller owns it, 0 when another task does, -1 leg ended, -2 stream up,
-- -3 a superseded stream attempt.
local doc = redis.call('HGET', KEYS[2], 'doc')
if doc then
  local leg = cjson.decode(doc)
  if leg.phase == 'ended' then
    return -1
  end
  local starts_audio = ARGV[3] == 'start_stream' or ARGV[3] == 'start_say' or ARGV[3] == 'start_play'
  if starts_audio and leg.stream == 'started' then
    return -2
  end
  local counts = leg.action_counts or {}
  if ARGV[3] == 'start_stream' and ARGV[4] ~= 'start_stream#' .. tostring(counts['start_stream'] or 0) then
    return -3
  end
end
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
if owner == ARGV[1] then
  return 1
end
return 0
