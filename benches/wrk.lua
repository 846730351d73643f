-- wrk script for benches/wrk.sh and benches/redis_store_wrk.sh: each request comes from one of
-- 1,000 client addresses (10.0.0.0 to 10.0.3.231, in X-Forwarded-For, which the servers trust
-- from 127.0.0.1), in turn, with a browser's User-Agent.
local n = 0
request = function()
  local i = n % 1000
  n = n + 1
  local ip = "10.0." .. math.floor(i / 256) .. "." .. (i % 256)
  return wrk.format("GET", "/", {
    ["X-Forwarded-For"] = ip,
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
  })
end
