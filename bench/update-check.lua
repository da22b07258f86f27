-- wrk script for the "update check" scenario: one GET per request, each with the next client id
-- from a pre-generated list in the X-Updraft-Client header (cycling), and a JSON summary line at
-- the end for bench/run.
--
--   wrk -t1 -c64 -d10s --latency -s bench/update-check.lua URL -- IDS_FILE
--
-- IDS_FILE holds one id per line. The requests are formatted once, in init(), so that the load
-- generator spends its time on the wire and not in Lua. nginx ignores the header; the request
-- bytes are the same for both targets.

-- common.lua sits beside this script; wrk names the script as given to -s (bench/run: an absolute path)
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs = {}
local count = 0

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

request = common.cycle(reqs)
done = common.done
