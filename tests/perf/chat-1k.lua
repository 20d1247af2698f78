-- wrk script: POST the 1 KB chat body used for the profiles in docs/performance.md.
-- env: KEY (virtual key or provider key), OPT_OFF=1 adds x-tokengateway-optimize: off.
local body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a concise assistant for an operations team. Answer in one paragraph."},{"role":"user","content":"Summarize the following notes for the weekly meeting: ' ..
  string.rep("the quarterly report shows revenue growth across regions while costs remained stable ", 9) .. '"}]}'
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KEY") or "")
if os.getenv("OPT_OFF") then wrk.headers["x-tokengateway-optimize"] = "off" end
