-- POST with the JSON body in $WRK_BODY, no Prefer header: synchronous
-- execution of any process (bench/guests.py sets the body per process).
wrk.method = "POST"
wrk.body = os.getenv("WRK_BODY")
wrk.headers["Content-Type"] = "application/json"
dofile(os.getenv("WRK_REPORT_LUA"))
done = report
