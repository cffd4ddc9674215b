-- POST /processes/hello-world/execution with {"inputs":{"name":"Joe"}}, no
-- Prefer header: synchronous execution.
wrk.method = "POST"
wrk.body = '{"inputs":{"name":"Joe"}}'
wrk.headers["Content-Type"] = "application/json"
dofile(os.getenv("WRK_REPORT_LUA"))
done = report
