-- wrk script for the "artifact hit" and "ranges" scenarios of bench/run, with the same JSON summary
-- line at the end as update-check.lua (bench/common.lua writes it for both).
--
--   wrk -t1 -c4  -d10s --latency -s bench/artifact.lua URL                               whole file
--   wrk -t1 -c16 -d10s --latency -s bench/artifact.lua URL -- ranges SIZE PART_LEN SEED
--
-- ranges: every request asks for one range "bytes=a-(a+PART_LEN-1)" at a random offset a in
-- [0, SIZE - PART_LEN], from a PRNG seeded with SEED; 10,000 requests are formatted once in init()
-- and cycled, so the load generator spends its time on the wire and not in Lua. No response()
-- callback: defining one would make wrk hand every body to Lua (bench/run checks the answers
-- itself before measuring, and the bytes per request show 206 vs 200).

-- common.lua sits beside this script; wrk names the script as given to -s (bench/run: an absolute path)
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs = {}

function init(args)
   local mode = args[1]
   if mode == nil then
      reqs[1] = wrk.format("GET", wrk.path)
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
end

request = common.cycle(reqs)
done = common.done
