-- cluster.lua - every change a presenced node makes to the cluster's shared
-- state in Redis (docs/cluster.md "Keys and channels"), one command per
-- call: EVALSHA <sha> 0 <command> <prefix> <args...>. A script runs alone,
-- so a contribution, the effective status it leads to, the organization's
-- seq and the publish are one atomic step: no node sees half of a change,
-- and every event of an organization has the next seq.
--
-- Statuses are numbers: OFFLINE 0, AWAY 1, ONLINE 2, BUSY 3; manual -1 is
-- "none". Ids are arbitrary strings without NUL.

local cmd, K = ARGV[1], ARGV[2]
local NAMES = {[0] = 'OFFLINE', [1] = 'AWAY', [2] = 'ONLINE', [3] = 'BUSY'}

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function int(n) return string.format('%d', n) end

-- The effective record of a user: status|manual|last_seen|nconns|name.
local function get_rec(org, user)
  local v = redis.call('HGET', K .. 'u:' .. org, user)
  if not v then return nil end
  local s, m, ls, n, name =
    string.match(v, '^(%-?%d+)|(%-?%d+)|(%d+)|(%d+)|(.*)$')
  return {status = tonumber(s), manual = tonumber(m), ls = tonumber(ls),
          n = tonumber(n), name = name}
end

local function put_rec(org, user, r)
  redis.call('HSET', K .. 'u:' .. org, user,
             int(r.status) .. '|' .. int(r.manual) .. '|' .. int(r.ls) ..
             '|' .. int(r.n) .. '|' .. r.name)
end

-- The client's frame, built once here and sent as is by every node
-- (docs/protocol.md "presence").
local function frame(user, r, seq, reason)
  return '{"type":"presence","user":' .. cjson.encode(user) ..
         ',"name":' .. cjson.encode(r.name) ..
         ',"status":"' .. NAMES[r.status] ..
         '","last_seen":' .. (r.ls > 0 and int(r.ls) or 'null') ..
         ',"seq":' .. int(seq) .. ',"reason":"' .. reason .. '"}'
end

local function header(r, origin, user)
  return int(r.status) .. ' ' .. int(r.manual) .. ' ' .. int(r.n) .. ' ' ..
         int(r.ls) .. ' ' .. origin .. ' ' .. #user .. ' ' .. #r.name ..
         '\n' .. user .. r.name
end

-- Recomputes user's effective record from every node's contribution and
-- the manual status; publishes an event (next seq) if the effective
-- status changed, else a record update when 'tell' says others must know
-- (a manual status changed). hint: the manual status the caller knows, used
-- only if Redis has no record (it came back empty).
local function recompute(org, user, reason, origin, name, hint, tell, seen)
  local r = get_rec(org, user)
  if not r then
    r = {status = 0, manual = tonumber(hint) or -1, ls = 0, n = 0,
         name = user}
    redis.call('SADD', K .. 'orgs', org)
    -- A record made here (Redis came back empty) is news to the others
    -- even without a change of status.
    tell = true
  end
  local was = r.ls .. '|' .. r.n .. '|' .. r.name
  -- seen: when the contribution that just went was last seen (a close).
  seen = tonumber(seen) or 0
  if r.manual ~= 0 and seen > r.ls then r.ls = seen end
  if name and name ~= '' then r.name = name end
  local c = redis.call('HGETALL', K .. 'c:' .. org .. '\0' .. user)
  local present, best, n, ls = false, 0, 0, 0
  for i = 1, #c, 2 do
    local a, cn, cls = string.match(c[i + 1], '^(%d+)|(%d+)|(%d+)$')
    present = true
    a, cn, cls = tonumber(a), tonumber(cn), tonumber(cls)
    if a > best then best = a end
    n = n + cn
    if cls > ls then ls = cls end
  end
  local eff = 0
  if present then
    if r.manual >= 0 then eff = r.manual else eff = best end
  end
  -- Appear offline freezes last_seen (docs/protocol.md).
  if r.manual ~= 0 and ls > r.ls then r.ls = ls end
  local changed = eff ~= r.status
  r.status, r.n = eff, n
  put_rec(org, user, r)
  if changed then
    local seq = redis.call('INCR', K .. 'seq:' .. org)
    redis.call('PUBLISH', K .. 'e:' .. org,
               'E ' .. int(seq) .. ' ' .. header(r, origin, user) ..
               frame(user, r, seq, reason))
  elseif tell or was ~= r.ls .. '|' .. r.n .. '|' .. r.name then
    -- The record moved without an event (a second tab, a last_seen): every
    -- node's view stays the same as Redis'.
    redis.call('PUBLISH', K .. 'e:' .. org, 'U ' .. header(r, origin, user))
  end
end

local function member(org, user) return org .. '\0' .. user end

-- contrib <node> then groups of 9: org user present auto nconns last_seen
-- reason name hint. One node's changes, in its order.
if cmd == 'contrib' then
  local node = ARGV[3]
  local i = 4
  while i + 8 <= #ARGV do
    local org, user = ARGV[i], ARGV[i + 1]
    local ckey = K .. 'c:' .. org .. '\0' .. user
    if ARGV[i + 2] == '1' then
      redis.call('HSET', ckey, node,
                 ARGV[i + 3] .. '|' .. ARGV[i + 4] .. '|' .. ARGV[i + 5])
      redis.call('SADD', K .. 'nc:' .. node, member(org, user))
    else
      redis.call('HDEL', ckey, node)
      redis.call('SREM', K .. 'nc:' .. node, member(org, user))
    end
    recompute(org, user, ARGV[i + 6], node, ARGV[i + 7], ARGV[i + 8], false,
              ARGV[i + 5])
    i = i + 9
  end
  return 1
end

-- manual <node> <org> <user> <manual> <name> <now_ms>: a manual status set
-- (-1 clears it). last_seen moves to now unless the user appears offline
-- before and after (presence.h "Appear offline").
if cmd == 'manual' then
  local node, org, user = ARGV[3], ARGV[4], ARGV[5]
  local m, name, now = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
  local r = get_rec(org, user)
  if not r then
    r = {status = 0, manual = -1, ls = 0, n = 0, name = user}
    redis.call('SADD', K .. 'orgs', org)
  end
  if r.manual ~= 0 and now > r.ls then r.ls = now end
  r.manual = m
  if r.manual ~= 0 and now > r.ls then r.ls = now end
  if name and name ~= '' then r.name = name end
  put_rec(org, user, r)
  recompute(org, user, 'manual', node, name, nil, true)
  return 1
end

-- resync <org>: the organization's seq and every record, atomically.
if cmd == 'resync' then
  local org = ARGV[3]
  local seq = redis.call('GET', K .. 'seq:' .. org) or '0'
  return {seq, redis.call('HGETALL', K .. 'u:' .. org)}
end

-- orgs: every organization with a record.
if cmd == 'orgs' then
  return redis.call('SMEMBERS', K .. 'orgs')
end

-- beat <node> <ttl_ms> <conns> <started_ms> <listen> <reap_after_ms>:
-- this node is alive; then reaps every node whose liveness key has expired
-- and that has been silent for reap_after_ms (node_ttl + grace): its
-- contributions go, and users left with none go OFFLINE. Returns the
-- number of nodes reaped and whether this node was still known.
if cmd == 'beat' then
  local node, ttl = ARGV[3], ARGV[4]
  local now = now_ms()
  local after = tonumber(ARGV[8])
  -- Some node beats every quarter second: a longer silence means Redis
  -- (or every node) stood still, and every liveness key may have expired
  -- meanwhile. No one is reaped until they all had the time to beat again.
  local clock = tonumber(redis.call('GET', K .. 'clock') or now)
  redis.call('SET', K .. 'clock', int(now))
  if now - clock >= math.max(1000, tonumber(ttl) / 2) then
    redis.call('SET', K .. 'stall', int(now))
  end
  local stall = tonumber(redis.call('GET', K .. 'stall') or '0')
  local known = redis.call('HEXISTS', K .. 'nodes', node)
  redis.call('SET', K .. 'alive:' .. node, int(now), 'PX', ttl)
  redis.call('HSET', K .. 'nodes', node,
             int(now) .. '|' .. ARGV[5] .. '|' .. ARGV[6] .. '|' .. ARGV[7])
  local reaped = 0
  if now - stall < after then return {0, known} end
  local nodes = redis.call('HGETALL', K .. 'nodes')
  for i = 1, #nodes, 2 do
    local other = nodes[i]
    local last = tonumber(string.match(nodes[i + 1], '^(%d+)|')) or 0
    if other ~= node and redis.call('EXISTS', K .. 'alive:' .. other) == 0
       and now - last >= after then
      local set = K .. 'nc:' .. other
      for _, m in ipairs(redis.call('SMEMBERS', set)) do
        local z = string.find(m, '\0', 1, true)
        local org, user = string.sub(m, 1, z - 1), string.sub(m, z + 1)
        redis.call('HDEL', K .. 'c:' .. m, other)
        recompute(org, user, 'disconnect', node, nil, nil, false)
      end
      redis.call('DEL', set)
      redis.call('HDEL', K .. 'nodes', other)
      reaped = reaped + 1
    end
  end
  -- known 0: this node had been reaped (it stood still itself): it must
  -- push what it holds again.
  return {reaped, known}
end

-- claim <node>: what the cluster holds for this node (a restart with the
-- same id): flat org, user, auto triples.
if cmd == 'claim' then
  local node = ARGV[3]
  local out = {}
  for _, m in ipairs(redis.call('SMEMBERS', K .. 'nc:' .. node)) do
    local v = redis.call('HGET', K .. 'c:' .. m, node)
    if v then
      local z = string.find(m, '\0', 1, true)
      out[#out + 1] = string.sub(m, 1, z - 1)
      out[#out + 1] = string.sub(m, z + 1)
      out[#out + 1] = string.match(v, '^(%d+)|')
    end
  end
  return out
end

-- sync <node> then groups of 9 as contrib: everything this node holds,
-- after a reconnect. Contributions of this node not in the list go; those
-- in it are set. Then 'floor' pairs follow a lone '--': org seq, so that
-- a Redis that came back empty continues every organization's seq above
-- what the node's clients saw.
if cmd == 'sync' then
  local node = ARGV[3]
  local sep = 4
  local keep = {}
  while sep + 8 <= #ARGV and ARGV[sep] ~= '--' do
    if ARGV[sep + 2] == '1' then keep[member(ARGV[sep], ARGV[sep + 1])] = true end
    sep = sep + 9
  end
  for j = sep + 1, #ARGV - 1, 2 do
    local key = K .. 'seq:' .. ARGV[j]
    local cur = tonumber(redis.call('GET', key) or '0')
    if tonumber(ARGV[j + 1]) > cur then redis.call('SET', key, ARGV[j + 1]) end
  end
  for _, m in ipairs(redis.call('SMEMBERS', K .. 'nc:' .. node)) do
    if not keep[m] then
      local z = string.find(m, '\0', 1, true)
      redis.call('HDEL', K .. 'c:' .. m, node)
      redis.call('SREM', K .. 'nc:' .. node, m)
      recompute(string.sub(m, 1, z - 1), string.sub(m, z + 1), 'disconnect',
                node, nil, nil, false)
    end
  end
  for i = 4, sep - 1, 9 do
    local org, user = ARGV[i], ARGV[i + 1]
    if ARGV[i + 2] == '1' then
      redis.call('HSET', K .. 'c:' .. org .. '\0' .. user, node,
                 ARGV[i + 3] .. '|' .. ARGV[i + 4] .. '|' .. ARGV[i + 5])
      redis.call('SADD', K .. 'nc:' .. node, member(org, user))
      recompute(org, user, ARGV[i + 6], node, ARGV[i + 7], ARGV[i + 8],
                false)
    else
      -- A user this node saw go while Redis was away: its last_seen.
      recompute(org, user, ARGV[i + 6], node, ARGV[i + 7], ARGV[i + 8],
                false, ARGV[i + 5])
    end
  end
  return 1
end

return redis.error_reply('unknown command ' .. tostring(cmd))
