-- Shared by the wrk scripts of bench/run (update-check.lua, artifact.lua), which load it with
--
--   local common = dofile(DIR .. "common.lua")   -- DIR: the loading script's own directory
--
-- common.cycle(reqs): a request() for wrk that hands out the requests in reqs (formatted once, in
-- init()) in turn, so that the load generator spends its time on the wire and not in Lua.
-- common.done: wrk's done(); writes the JSON summary line bench/run reads from wrk's output
-- (requests, bytes, errors, latency percentiles in microseconds).

local common = {}

function common.cycle(reqs)
   local i, n = 0, nil
   return function()
      n = n or #reqs  -- reqs is filled in init(), after the script defined request()
      i = i + 1
      if i > n then
         i = 1
      end
      return reqs[i]
   end
end

function common.done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p99_9":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end

return common
