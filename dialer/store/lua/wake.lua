-- wake: the scheduler's safety net for waiting sets — moves up to n members back to due, and drops the
-- set from the index once it is empty.
-- KEYS: waiting due waiting_index
-- ARGV[1] now (ms)  ARGV[2] how many (-1 = all)
-- Returns how many were woken.
local n = wake(K.waiting, K.due, tonumber(ARGV[1]), tonumber(ARGV[2]))
if redis.call('ZCARD', K.waiting) == 0 then redis.call('HDEL', K.waiting_index, K.waiting) end
return n
