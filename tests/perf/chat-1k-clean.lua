-- wrk script: the 1 KB chat of chat-1k.lua without its trailing space, i.e. a body no optimization stage changes
-- (chat-1k.lua ends its prose with a space, which the compact stage trims). Issue #17, the optimizer's no-op case.
-- env: KEY (virtual key or provider key), OPT_OFF=1 adds x-tokengateway-optimize: off.
local prose = string.rep("the quarterly report shows revenue growth across regions while costs remained stable ", 9):gsub("%s+$", "")
local body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a concise assistant for an operations team. Answer in one paragraph."},{"role":"user","content":"Summarize the following notes for the weekly meeting: ' ..
  prose .. '"}]}'
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KEY") or "")
if os.getenv("OPT_OFF") then wrk.headers["x-tokengateway-optimize"] = "off" end
