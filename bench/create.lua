-- POST /v1/keys: one durable key creation (and its audit event) per request.
local admin = os.getenv("LK_ADMIN_KEY")
request = function()
  return wrk.format("POST", "/v1/keys",
    { ["Authorization"] = "Bearer " .. admin, ["Content-Type"] = "application/json" },
    '{"name":"bench"}')
end
