-- wrk script for the "artifact hit" and "ranges" scenarios of bench/run, with the same JSON summary
-- line at the end as update-check.lua.
--
--   wrk -t1 -c4  -d10s --latency -s bench/artifact.lua URL                               whole file
--   wrk -t1 -c16 -d10s --latency -s bench/artifact.lua URL -- ranges SIZE PART_LEN SEED
--
-- ranges: every request asks for one range "bytes=a-(a+PART_LEN-1)" at a random offset a in
-- [0, SIZE - PART_LEN], from a PRNG seeded with SEED; 10,000 requests are formatted once in init()
-- and cycled, so the load generator spends its time on the wire and not in Lua. No response()
-- callback: defining one would make wrk hand every body to Lua (bench/run checks the answers
-- itself before measuring, and the bytes per request show 206 vs 200).

local reqs = {}
local count, next_i = 0, 0

function init(args)
   local mode = args[1]
   if mode == nil then
      return
   end
   if mode ~= "ranges" then
      error("usage: wrk ... -s artifact.lua URL [-- ranges SIZE PART_LEN SEED]")
   end
   local size, part, seed = tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
   if size == nil or part == nil or seed == nil or part > size then
      error("ranges: SIZE PART_LEN SEED expected, PART_LEN <= SIZE")
   end
   math.randomseed(seed)
   local host = wrk.headers["Host"]
   for i = 1, 10000 do
      local a = math.floor(math.random() * (size - part + 1))
      reqs[i] = wrk.format("GET", wrk.path, { ["Host"] = host, ["Range"] = string.format("bytes=%d-%d", a, a + part - 1) })
   end
   count = 10000
end

function request()
   if count == 0 then
      return wrk.format("GET", wrk.path)
   end
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
