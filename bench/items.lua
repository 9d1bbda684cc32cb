-- GET /items/<n> through a proxy or the gateway, a different seeded key on each request (the
-- route table asks for item:{id}:read, which the seeded keys' owner holds).
local keys, i = {}, 0
for line in io.lines(os.getenv("LK_KEYS_FILE")) do keys[#keys + 1] = line end
request = function()
  i = i % #keys + 1
  return wrk.format("GET", "/items/" .. (i % 1000), { ["Authorization"] = "Bearer " .. keys[i] })
end
