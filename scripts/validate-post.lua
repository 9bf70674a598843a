-- wrk script for scripts/bench-webhook*.sh: POSTs AdmissionReviews (one JSON per line of the
-- file given as the first script argument) to /validate/L3 in turn. Requests are formatted once
-- in init(); request() only hands the next one out. A second argument > 0 is the delay in ms
-- between a connection's requests (to hold a rate instead of saturating).
local reqs, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do
    reqs[#reqs + 1] = wrk.format("POST", "/validate/L3", {["Content-Type"] = "application/json"}, line)
  end
  local d = tonumber(args[2] or "0")
  if d > 0 then delay = function() return d end end
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
