-- POST /v1/verify, the provider's question, with a different seeded key on each request.
local keys, i = {}, 0
local admin = os.getenv("LK_ADMIN_KEY")
for line in io.lines(os.getenv("LK_KEYS_FILE")) do keys[#keys + 1] = line end
request = function()
  i = i % #keys + 1
  return wrk.format("POST", "/v1/verify",
    { ["Authorization"] = "Bearer " .. admin, ["Content-Type"] = "application/json" },
    '{"key":"' .. keys[i] .. '"}')
end
