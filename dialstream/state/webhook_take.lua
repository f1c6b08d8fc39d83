-- Take due deliveries for sending, leased: each stays in the due set, scored by its lease's end,
-- so a delivery whose task is lost (its worker died) is due again then.
-- KEYS[1] due sorted set; ARGV[1] now (s); ARGV[2] most to take; ARGV[3] lease (s)
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[3])
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', until_, id)
end
return due
