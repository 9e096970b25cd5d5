/**
 * The Lua scripts the cluster runs inside Redis. Each one is atomic, which
 * is what makes the lease, the fencing check, the snapshot and its sequence
 * number agree: an event is applied to the snapshot, numbered and published
 * in one step, or not at all.
 *
 * Internal to the `./redis` entry point.
 *
 * @module
 */

/**
 * The heartbeat every instance runs every third of a lease.
 *
 * KEYS: leader, epoch, interest. ARGV: instance id, own lease token ("" when
 * not leader), lease ms, highest epoch seen, watched servers (JSON array),
 * interest staleness ms, candidate ("1" to stand for election), deadline
 * (Redis clock, ms; 0: none).
 *
 * A heartbeat that reaches Redis after its deadline does nothing: it was
 * held on the way (a black-holed link delivering at the heal) and its sender
 * has given up on it; taking or renewing a lease from it would leave the
 * lease with an instance that does not know it holds it. Otherwise it raises
 * the epoch counter to the highest epoch this instance has seen (after a
 * Redis restart the counter starts again at 0; this keeps epochs rising),
 * records this instance's watched servers, renews or takes the lease, and,
 * for the leader, returns every instance's watched servers.
 *
 * Returns `{ epoch (0 = not leader, -2 = too late), holder token or "",
 * interest lists, Redis time ms, the lease's remaining ms }`.
 */
export const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[8] or '0')
if deadline > 0 and now > deadline then
  return { -2, redis.call('GET', KEYS[1]) or '', {}, now, redis.call('PTTL', KEYS[1]) }
end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
local floor = tonumber(ARGV[4])
if floor > cur then redis.call('SET', KEYS[2], floor); cur = floor end
redis.call('HSET', KEYS[3], ARGV[1], now .. ' ' .. ARGV[5])
local holder = redis.call('GET', KEYS[1])
local epoch = 0
if ARGV[2] ~= '' and holder == ARGV[2] then
  local mine = tonumber(string.match(ARGV[2], ':(%d+)$'))
  if cur <= mine then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    epoch = mine
  else
    redis.call('DEL', KEYS[1])
    holder = false
  end
elseif not holder and ARGV[7] == '1' then
  epoch = redis.call('INCR', KEYS[2])
  holder = ARGV[1] .. ':' .. epoch
  redis.call('SET', KEYS[1], holder, 'PX', ARGV[3])
end
local lists = {}
if epoch > 0 then
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    local v = all[i + 1]
    local sp = string.find(v, ' ')
    if now - tonumber(string.sub(v, 1, sp - 1)) > tonumber(ARGV[6]) then
      redis.call('HDEL', KEYS[3], all[i])
    else
      table.insert(lists, string.sub(v, sp + 1))
    end
  end
end
return { epoch, holder or '', lists, now, redis.call('PTTL', KEYS[1]) }
`;

/**
 * Give the lease up (on stop), only when it is still ours.
 *
 * KEYS: leader. ARGV: own token.
 */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Apply one event to a server's snapshot, number it and publish it.
 *
 * KEYS: leader, epoch, seq, users, marker, stream, library users, message
 * ids. ARGV: lease token ("" for a library broadcast, which any instance may
 * make), channel, op ("presence", "delete", "gone": the server and its
 * snapshot are gone, or "none"), uid, patch (JSON), event (JSON), kind ("src"
 * or "lib"), stream length, the source's message id ("" none), ids kept.
 *
 * A message whose id is among the last ids published for its server is
 * dropped (-2): a new publisher that resumed a Discord session from a
 * sequence saved a moment before the crash gets the dead publisher's last
 * lines replayed, and they were broadcast already. Checked and recorded in
 * the same step as the publish, so no crash can fall between the two.
 *
 * Users last written by a library broadcast are remembered, so that a new
 * publisher correcting the snapshot to its source's state leaves them be.
 *
 * The numbered envelope goes to the server's stream (id `seq-0`, trimmed to
 * about the given length) as well as to its channel: an instance that missed
 * messages on the channel reads them from the stream.
 *
 * A source event whose token no longer holds the lease is refused (-1): the
 * fencing that keeps a paused-then-resumed leader from publishing beside the
 * new one. Returns the event's sequence number.
 */
export const PUBLISH = `
local epoch
if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
  epoch = tonumber(string.match(ARGV[1], ':(%d+)$'))
else
  epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
end
local mid = ARGV[9] or ''
if mid ~= '' and redis.call('ZSCORE', KEYS[8], mid) then return -2 end
local op = ARGV[3]
if op == 'delete' then
  redis.call('HDEL', KEYS[4], ARGV[4])
  redis.call('SREM', KEYS[7], ARGV[4])
elseif op == 'gone' then
  redis.call('DEL', KEYS[4], KEYS[5], KEYS[7], KEYS[8])
  redis.call('PEXPIRE', KEYS[6], 86400000)
elseif op == 'presence' then
  if ARGV[7] == 'lib' then redis.call('SADD', KEYS[7], ARGV[4]) else redis.call('SREM', KEYS[7], ARGV[4]) end
  local patch = cjson.decode(ARGV[5])
  local cur = redis.call('HGET', KEYS[4], ARGV[4])
  local entry = nil
  if cur then
    entry = cjson.decode(cur)
    for k, v in pairs(patch) do entry[k] = v end
  elseif patch.username then
    entry = patch
  end
  if entry then redis.call('HSET', KEYS[4], ARGV[4], cjson.encode(entry)) end
end
local seq = redis.call('INCR', KEYS[3])
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local env = '{"s":' .. seq .. ',"e":' .. epoch .. ',"k":"' .. ARGV[7] .. '","t":' .. ms .. ',"ev":' .. ARGV[6] .. '}'
redis.pcall('XADD', KEYS[6], 'MAXLEN', '~', ARGV[8], seq .. '-0', 'm', env)
if mid ~= '' then
  redis.call('ZADD', KEYS[8], seq, mid)
  redis.call('ZREMRANGEBYRANK', KEYS[8], 0, -1 - tonumber(ARGV[10]))
end
redis.call('PUBLISH', ARGV[2], env)
return seq
`;

/**
 * Write a server's whole user map: the leader seeds it from its source, and
 * after Redis lost its data (a restart without persistence) an instance
 * that still holds a synced copy restores it.
 *
 * KEYS: leader, epoch, seq, users, marker, stream. ARGV: lease token ("" to
 * restore, allowed only in "missing" mode), channel, mode ("missing": only
 * when there is no snapshot yet; "replace": a new publisher writes its
 * source's truth), stream length, then uid, entry JSON pairs.
 *
 * Returns the snapshot's sequence number, 0 when one existed and mode was
 * "missing", -1 when the token no longer holds the lease. Publishes a `snap`
 * marker so edges reload.
 */
export const SEED = `
local epoch
if ARGV[1] ~= '' then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
  epoch = tonumber(string.match(ARGV[1], ':(%d+)$'))
else
  if ARGV[3] ~= 'missing' then return -1 end
  epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
end
if ARGV[3] == 'missing' and redis.call('EXISTS', KEYS[5]) == 1 then return 0 end
redis.call('DEL', KEYS[4])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[5], '1')
local seq = redis.call('INCR', KEYS[3])
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local env = '{"s":' .. seq .. ',"e":' .. epoch .. ',"k":"snap","t":' .. ms .. '}'
redis.pcall('XADD', KEYS[6], 'MAXLEN', '~', ARGV[4], seq .. '-0', 'm', env)
redis.call('PUBLISH', ARGV[2], env)
return seq
`;

/**
 * Read a snapshot: its sequence number and user map, in one step. A server
 * never seeded (no marker) has no snapshot, even if events touched it.
 *
 * KEYS: seq, users, marker. Returns `{ seq or false, flat uid/entry list }`.
 */
export const LOAD = `
if redis.call('EXISTS', KEYS[3]) == 0 then return { false, {} } end
return { redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]) }
`;
/**
 * Set a value only while holding the lease (the server list, the Discord
 * session). KEYS: leader, key. ARGV: token, value ("" deletes), ttl ms (0: none).
 */
export const FENCED_SET = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if ARGV[2] == '' then return redis.call('DEL', KEYS[2]) end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[2], ARGV[2])
end
return 1
`;
