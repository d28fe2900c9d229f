-- transition: compare-and-set of a campaign's status (the allowed-transition table lives in Python;
-- this makes the check and the write one step, so two commands cannot both succeed).
-- KEYS[1] campaign hash
-- ARGV[1] allowed current statuses (comma list)  ARGV[2] new status ('' = keep)  ARGV[3] reason
-- ARGV[4] now (ms)  ARGV[5..] optional field, value pairs written in the same step (e.g. deleted_at)
-- Returns {'ok', old} or {'refused', current}.
local cur = status_of(KEYS[1])
if not cur then return {'refused', 'missing'} end
if not is_member(ARGV[1], cur) then return {'refused', cur} end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'status', ARGV[2], 'status_reason', ARGV[3])
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[4])
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return {'ok', cur}
