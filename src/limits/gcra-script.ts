/**
 * gcra.ts in Lua, for the shared store: one atomic script per request checks every rule
 * given (KEYS[i] with ARGV interval_i, window_i, in ms) and counts the request against all
 * of them only when all allow it. The clock is Redis's (TIME), so replicas whose clocks
 * differ still share one timeline. Each counter expires when its budget is whole again.
 *
 * Answers {1, remaining_1, reset_ms_1, …} or {0, index of the refusing rule, wait_ms}.
 */
export const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local nexts = {}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local nt = tat + interval
  local wait = nt - window - now
  if wait > 0.000001 then return {0, i, math.ceil(wait)} end
  nexts[i] = nt
end
local out = {1}
for i = 1, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local window = tonumber(ARGV[2 * i])
  local nt = nexts[i]
  redis.call('SET', KEYS[i], string.format('%.4f', nt), 'PX', math.max(1, math.ceil(nt - now)))
  local r = math.floor((now + window - nt) / interval + 0.000001)
  if r < 0 then r = 0 end
  out[#out + 1] = r
  out[#out + 1] = math.ceil(nt - now)
end
return out
`;
