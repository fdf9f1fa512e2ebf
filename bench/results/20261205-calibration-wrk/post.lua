wrk.method = "POST"
wrk.body = '{"token":"t","amount":100,"currency":"USD"}'
wrk.headers["Content-Type"] = "application/json"
