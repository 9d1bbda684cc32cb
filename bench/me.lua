-- GET /v1/me, a client checking its own key, with a different seeded key on each request.
local keys, i = {}, 0
for line in io.lines(os.getenv("LK_KEYS_FILE")) do keys[#keys + 1] = line end
request = function()
  i = i % #keys + 1
  return wrk.format("GET", "/v1/me", { ["Authorization"] = "Bearer " .. keys[i] })
end
