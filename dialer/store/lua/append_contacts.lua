-- append_contacts: adds contacts to a group or a running campaign; a number already there is kept as a
-- `duplicate` (never dialled twice). Indexes are list positions, assigned here. Contact JSON passes
-- through as an opaque string (Lua's cjson would turn [] into {} and round big integers).
-- A campaign fed from its group keeps `group_cursor` (group list positions it has taken): the append
-- applies only at the expected cursor, so a feed is never applied twice and one missed (a crash
-- between the group import and the feed) is taken by the next feed.
-- KEYS: owner contacts_list phones
-- (owner: the group or campaign hash with the counters; contacts_list: its contacts; phones: its numbers)
-- ARGV[1] expected group_cursor ('' = none)  ARGV[2] group_cursor after this append ('' = none)
-- ARGV[3..] per contact, 4 values: phone, intake ('ok' | 'invalid'), intake reason as JSON (or null),
--   the rest of the contact as a JSON object without index/intake/intake_reason
-- Returns {added ok, duplicates, invalid, flags}: one letter per contact, o(k) d(uplicate) i(nvalid);
-- or {0, 0, 0, 'stale'} when the cursor did not match.
if ARGV[1] ~= '' and (redis.call('HGET', K.owner, 'group_cursor') or '0') ~= ARGV[1] then
  return {0, 0, 0, 'stale'}
end
if ARGV[2] ~= '' then redis.call('HSET', K.owner, 'group_cursor', ARGV[2]) end
local ok, dup, bad = 0, 0, 0
local flags = {}
local index = redis.call('LLEN', K.contacts_list)
local n = (#ARGV - 2) / 4
for i = 0, n - 1 do
  local b = 2 + i * 4
  local phone, intake, reason, rest = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  if intake == 'ok' then
    if redis.call('SADD', K.phones, phone) == 1 then
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
  redis.call('RPUSH', K.contacts_list, head .. string.sub(rest, 2))
  index = index + 1
end
redis.call('HINCRBY', K.owner, 'contacts_n', n)
redis.call('HINCRBY', K.owner, 'total', n)
redis.call('HINCRBY', K.owner, 'scheduled_calls', ok + dup)
redis.call('HINCRBY', K.owner, 'error_calls', bad)
redis.call('HINCRBY', K.owner, 'skipped', dup)
return {ok, dup, bad, table.concat(flags)}
