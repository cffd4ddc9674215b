-- POST /processes/hello-world/execution with {"inputs":{"name":"Joe"}} and
-- Prefer: respond-async: each request queues one async job (201).
wrk.method = "POST"
wrk.body = '{"inputs":{"name":"Joe"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Prefer"] = "respond-async"
dofile(os.getenv("WRK_REPORT_LUA"))
done = report
