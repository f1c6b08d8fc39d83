-- Accept a leg event: claim its event_sid, publish its Celery task and arm its rescue timer,
-- all or nothing. A duplicate changes nothing; a failure leaves nothing half done, so the
-- sender's retry is published rather than mistaken for a duplicate.
-- KEYS[1] de-duplication marker; KEYS[2] the broker's queue list; KEYS[3] sorted set of timers;
-- KEYS[4] the leg's record.
-- ARGV[1] leg_sid; ARGV[2] marker ttl seconds; ARGV[3] task message (dialstream.broker.messages);
-- ARGV[4] rescue timer member ('' for none); ARGV[5] seconds until it fires;
-- ARGV[6] '1' when the event must be for a leg with a record (its tag is not ours).
-- Returns 1 when published, 0 for a duplicate, -1 for a leg dialstream does not know.
--#include timer_arm.lua
if ARGV[6] == '1' and redis.call('EXISTS', KEYS[4]) == 0 then
  return -1
end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return 0
end
redis.call('LPUSH', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then
  arm_timer(KEYS[3], ARGV[4], ARGV[5])
end
return 1
