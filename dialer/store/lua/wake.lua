-- wake: the scheduler's safety net for waiting sets — moves up to n members back to due, and drops the
-- set from the index once it is empty.
-- KEYS[1] waiting zset  KEYS[2] due zset  KEYS[3] waiting index hash
-- ARGV[1] now (ms)  ARGV[2] how many (-1 = all)
-- Returns how many were woken.
local n = wake(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('HDEL', KEYS[3], KEYS[1]) end
return n
