-- Extend a dial's lease, for the holder of its token only.
-- KEYS[1] leased: member -> lease expiry (s); KEYS[2] leases: hash member -> token
-- ARGV[1] member; ARGV[2] token; ARGV[3] new expiry (s)
-- Returns 1 if the caller holds the lease (now extended), else 0.
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]), ARGV[1])
return 1
