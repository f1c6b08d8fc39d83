-- (Re)schedule one contact's dial for a time, unless its campaign was canceled.
-- KEYS[1] due; KEYS[2] leased; KEYS[3] leases (hash member -> token); KEYS[4] the campaign hash
-- ARGV[1] member to schedule; ARGV[2] not-before time (s); ARGV[3] lease token and ARGV[4]
-- leased member to give up in the same step ('' and '': none)
-- A lease is given up by its holder only: a worker whose lease ran out (the contact was taken
-- again) must not move the new holder's contact.
-- Returns 1 scheduled, 0 not the lease's holder (nothing done), -1 campaign canceled (nothing
-- is scheduled, the contact's dialing is over; the lease is kept: its holder gives it up after
-- recording the contact's final result, so that the campaign never looks finished without it).
if ARGV[3] ~= '' and redis.call('HGET', KEYS[3], ARGV[4]) ~= ARGV[3] then
  return 0
end
if redis.call('HGET', KEYS[4], 'state') == 'canceled' then
  return -1
end
if ARGV[3] ~= '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('HDEL', KEYS[3], ARGV[4])
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[1])
return 1
