-- Arm a timer ARGV[2] seconds from now on the Redis server's clock.
-- KEYS[1] sorted set of timers; ARGV[1] member.
--#include timer_arm.lua
return arm_timer(KEYS[1], ARGV[1], ARGV[2])
