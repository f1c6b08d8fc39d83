-- Accept a leg event: claim its event_sid, publish its Celery task and arm its rescue timer,
-- all or nothing. A duplicate changes nothing; a failure leaves nothing half done, so the
-- sender's retry is published rather than mistaken for a duplicate. An event the leg's record
-- names as quiet (it would call for no action now: dialstream.domain.kept_events) needs no
-- task: it is kept beside the record, whose next load applies it, and the record's version is
-- bumped so a worker's compare-and-set begun before reads it again.
-- KEYS[1] de-duplication marker; KEYS[2] the broker's queue list; KEYS[3] sorted set of timers;
-- KEYS[4] the leg's record.
-- ARGV[1] leg_sid; ARGV[2] marker ttl seconds; ARGV[3] task message (dialstream.broker.messages);
-- ARGV[4] rescue timer member ('' for none); ARGV[5] seconds until it fires;
-- ARGV[6] '1' when the event must be for a leg with a record (its tag is not ours);
-- ARGV[7] the field of the leg's hash naming its quiet events (a line each); ARGV[8] how the
-- event is named there ('' for an event never kept); ARGV[9] the field to keep it in, ARGV[10] its payload.
-- Returns 1 when published, 2 when kept beside the record, 0 for a duplicate, -1 for a leg
-- dialstream does not know.
--#include timer_arm.lua
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[4]) == 0 then
  return -1
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return 0
end
if ARGV[8] ~= '' then
  local quiet = redis.call('HGET', KEYS[4], ARGV[7])
  if quiet and string.find('\n' .. quiet .. '\n', '\n' .. ARGV[8] .. '\n', 1, true) then
    redis.call('HSET', KEYS[4], ARGV[9], ARGV[10])
    redis.call('HINCRBY', KEYS[4], 'version', 1)
    return 2
  end
end
redis.call('LPUSH', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then
  arm_timer(KEYS[3], ARGV[4], ARGV[5])
end
return 1
