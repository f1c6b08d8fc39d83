-- Register or refresh one bot: its hash, then its place in the index, atomically.
-- KEYS[1] index (sorted set: url -> expiry in ms, "+inf" for static entries)
-- KEYS[2] the bot's hash
-- ARGV: url, capacity, load, ttl_ms, static ("1" or "0"), formats (content types, comma-separated)
-- The server's clock stamps expiry so that bots on skewed hosts agree.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2], 'url', ARGV[1], 'capacity', ARGV[2], 'load', ARGV[3], 'static', ARGV[5], 'formats', ARGV[6], 'updated_ms', now)
if ARGV[5] == '1' then
    redis.call('PERSIST', KEYS[2])
    redis.call('ZADD', KEYS[1], '+inf', ARGV[1])
else
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])
end
return now
