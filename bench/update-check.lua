-- wrk script for the "update check" scenario: one GET per request, each with the next client id
-- from a pre-generated list in the X-Updraft-Client header (cycling), and a JSON summary line at
-- the end for bench/run.
--
--   wrk -t1 -c64 -d10s --latency -s bench/update-check.lua URL -- IDS_FILE
--
-- IDS_FILE holds one id per line. The requests are formatted once, in init(), so that the load
-- generator spends its time on the wire and not in Lua. nginx ignores the header; the request
-- bytes are the same for both targets.

local reqs = {}
local count, next_i = 0, 0

function init(args)
   local file = args[1]
   if file == nil then
      error("usage: wrk ... -s update-check.lua URL -- IDS_FILE")
   end
   local host = wrk.headers["Host"]
   for id in io.lines(file) do
      count = count + 1
      reqs[count] = wrk.format("GET", wrk.path, { ["Host"] = host, ["X-Updraft-Client"] = id })
   end
   if count == 0 then
      error("no client ids in " .. file)
   end
end

function request()
   next_i = next_i + 1
   if next_i > count then
      next_i = 1
   end
   return reqs[next_i]
end

function done(summary, latency, requests)
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
