-- Remove expired slots of every campaign now (slot_acquire.lua does the same first thing).
-- KEYS[1] account calls; KEYS[2] streams; KEYS[3] hash slot id -> campaign id
-- ARGV[1] key prefix of campaign sets.
-- Returns the ids of the slots removed, for the logs.
--#include slot_expire.lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return expire_slots(KEYS[1], KEYS[3], ARGV[1], now, KEYS[2])
