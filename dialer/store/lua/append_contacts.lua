-- append_contacts: adds contacts to a group or a running campaign; a number already there is kept as a
-- `duplicate` (never dialled twice). Indexes are list positions, assigned here. Contact JSON passes
-- through as an opaque string (Lua's cjson would turn [] into {} and round big integers).
-- KEYS[1] owner hash (counters)  KEYS[2] contacts list  KEYS[3] phones set
-- ARGV per contact, 4 values: phone, intake ('ok' | 'invalid'), intake reason as JSON (or null),
--   the rest of the contact as a JSON object without index/intake/intake_reason
-- Returns {added ok, duplicates, invalid, flags}: one letter per contact, o(k) d(uplicate) i(nvalid).
local ok, dup, bad = 0, 0, 0
local flags = {}
local index = redis.call('LLEN', KEYS[2])
local n = #ARGV / 4
for i = 0, n - 1 do
  local phone, intake, reason, rest = ARGV[i * 4 + 1], ARGV[i * 4 + 2], ARGV[i * 4 + 3], ARGV[i * 4 + 4]
  if intake == 'ok' then
    if redis.call('SADD', KEYS[3], phone) == 1 then
      ok = ok + 1
      flags[#flags + 1] = 'o'
    else
      intake, reason = 'duplicate', '"duplicate"'
      dup = dup + 1
      flags[#flags + 1] = 'd'
    end
  else
    bad = bad + 1
    flags[#flags + 1] = 'i'
  end
  local head = '{"index":' .. index .. ',"intake":"' .. intake .. '","intake_reason":' .. reason .. ','
  redis.call('RPUSH', KEYS[2], head .. string.sub(rest, 2))
  index = index + 1
end
redis.call('HINCRBY', KEYS[1], 'contacts_n', n)
redis.call('HINCRBY', KEYS[1], 'total', n)
redis.call('HINCRBY', KEYS[1], 'scheduled_calls', ok + dup)
redis.call('HINCRBY', KEYS[1], 'error_calls', bad)
redis.call('HINCRBY', KEYS[1], 'skipped', dup)
return {ok, dup, bad, table.concat(flags)}
