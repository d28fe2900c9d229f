-- transition: compare-and-set of a campaign's status (the allowed-transition table lives in Python;
-- this makes the check and the write one step, so two commands cannot both succeed).
-- KEYS[1] campaign hash
-- ARGV[1] allowed current statuses (comma list)  ARGV[2] new status  ARGV[3] reason  ARGV[4] now (ms)
-- Returns {'ok', old} or {'refused', current}.
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {'refused', 'missing'} end
if not is_member(ARGV[1], cur) then return {'refused', cur} end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'status_reason', ARGV[3], 'updated_at', ARGV[4])
return {'ok', cur}
