-- append_contacts: adds contacts to a group or a running campaign; a number already there is kept as a
-- `duplicate` (never dialled twice). Indexes are list positions, assigned here.
-- KEYS[1] owner hash (counters)  KEYS[2] contacts list  KEYS[3] phones set
-- ARGV[1..] contact JSON ({"phone", "data", "intake", "intake_reason"}; intake 'ok' or 'invalid')
-- Returns {added ok, duplicates, invalid, flags}: one letter per contact, o(k) d(uplicate) i(nvalid).
local ok, dup, bad = 0, 0, 0
local flags = {}
local index = redis.call('LLEN', KEYS[2])
for i = 1, #ARGV do
  local c = cjson.decode(ARGV[i])
  c['index'] = index
  if c['intake'] == 'ok' then
    if redis.call('SADD', KEYS[3], c['phone']) == 1 then
      ok = ok + 1
      flags[#flags + 1] = 'o'
    else
      c['intake'] = 'duplicate'
      c['intake_reason'] = 'duplicate'
      dup = dup + 1
      flags[#flags + 1] = 'd'
    end
  else
    bad = bad + 1
    flags[#flags + 1] = 'i'
  end
  redis.call('RPUSH', KEYS[2], cjson.encode(c))
  index = index + 1
end
redis.call('HINCRBY', KEYS[1], 'contacts_n', #ARGV)
redis.call('HINCRBY', KEYS[1], 'total', #ARGV)
redis.call('HINCRBY', KEYS[1], 'scheduled_calls', ok + dup)
redis.call('HINCRBY', KEYS[1], 'error_calls', bad)
redis.call('HINCRBY', KEYS[1], 'skipped', dup)
return {ok, dup, bad, table.concat(flags)}
