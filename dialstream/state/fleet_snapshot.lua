-- Prune expired bots from the index and return the live ones, atomically.
-- KEYS[1] index (sorted set: url -> expiry in ms)
-- ARGV[1] prefix of the bots' hash keys (the url is appended)
-- Returns {{url, capacity, load, static, formats}, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
local live = {}
for _, url in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local fields = redis.call('HMGET', ARGV[1] .. url, 'capacity', 'load', 'static', 'formats')
    if fields[1] then
        table.insert(live, {url, fields[1], fields[2] or '0', fields[3] or '0', fields[4] or ''})
    else
        -- The hash expired a moment before its index entry: the bot is gone.
        redis.call('ZREM', KEYS[1], url)
    end
end
return live
