# The e2e check's test script (run once `stack up --detach --wait` has every process ready;
# see e2e.nix). Every request goes through HAProxy on PLATFORM_PORT.
base="http://127.0.0.1:${PLATFORM_PORT}"
body=$(mktemp)

fail() {
  echo "e2e: FAIL: $*" >&2
  exit 1
}

# call METHOD PATH [curl args...]: the answer's body in $body, its status on stdout.
call() {
  local method=$1 path=$2
  shift 2
  curl -sS --max-time 5 -o "$body" -w '%{http_code}' -X "$method" "$base$path" "$@"
}

# expect STATUS METHOD PATH [curl args...]: fails unless the status matches and the body is JSON.
expect() {
  local want=$1 got
  shift
  got=$(call "$@")
  [ "$got" = "$want" ] || fail "$1 $2: status $got, want $want: $(cat "$body")"
  jq -e . "$body" >/dev/null || fail "$1 $2: body is not JSON: $(cat "$body")"
}

json=(-H 'Content-Type: application/json')

expect 200 GET /auth/health
expect 200 GET /transaction/health

expect 200 POST /auth/token "${json[@]}" -d '{"username":"alice","password":"password"}'
token=$(jq -er .token "$body")

expect 200 POST /transaction/transaction "${json[@]}" \
  -d "{\"token\":\"$token\",\"amount\":100,\"currency\":\"USD\"}"
jq -e '.user_id == 1 and .amount == 100 and .currency == "USD"' "$body" >/dev/null ||
  fail "transaction answer: $(cat "$body")"
id=$(jq -er .id "$body")
echo "e2e: transaction $id queued"

status=""
for _ in $(seq 1 100); do
  expect 200 GET "/transaction/transactions/$id" -H "Authorization: Bearer $token"
  status=$(jq -r .status "$body")
  [ "$status" = processed ] && break
  sleep 0.1
done
[ "$status" = processed ] || fail "transaction $id is $status after 10 s, want processed"
echo "e2e: transaction $id processed"

line="==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD"
count=$(grep -cF "$line" "$STACK_STATE_DIR/logs/psp-connector.log" || true)
[ "$count" = 1 ] || fail "psp-connector.log has the PSP line $count times, want 1"

# The contract's error rows through the router, and the router's own 404.
expect 401 POST /auth/token "${json[@]}" -d '{"username":"alice","password":"wrong"}'
expect 404 POST /auth/token "${json[@]}" -d '{"username":"nobody","password":"password"}'
expect 422 POST /transaction/transaction "${json[@]}" -d '{"amount":100,"currency":"USD"}'
[ "$(jq -r .error "$body")" = "Token is blank" ] || fail "blank token: $(cat "$body")"
expect 404 GET /no/such/path

echo "e2e: PASS"
