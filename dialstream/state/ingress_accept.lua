-- Accept a leg event: claim its event_sid, publish its Celery task and arm its rescue timer,
-- all or nothing. A duplicate changes nothing; a failure leaves nothing half done, so the
-- sender's retry is published rather than mistaken for a duplicate.
-- KEYS[1] de-duplication marker; KEYS[2] the broker's queue list; KEYS[3] sorted set of timers.
-- ARGV[1] leg_sid; ARGV[2] marker ttl seconds; ARGV[3] task message (dialstream.broker.task_message);
-- ARGV[4] rescue timer member ('' for none); ARGV[5] seconds until it fires.
-- Returns 1 when published, 0 for a duplicate.
--#include timer_arm.lua
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return 0
end
redis.call('LPUSH', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then
  arm_timer(KEYS[3], ARGV[4], ARGV[5])
end
return 1
