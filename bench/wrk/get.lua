-- GET the URL given on the command line (a job's status) with Accept: JSON.
wrk.method = "GET"
wrk.headers["Accept"] = "application/json"
dofile(os.getenv("WRK_REPORT_LUA"))
done = report
