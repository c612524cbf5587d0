package integration

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// basicHeader is an Authorization header with Basic credentials.
func basicHeader(user, password string) http.Header {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, password)
	return http.Header{"Authorization": {req.Header.Get("Authorization")}}
}

// TestFailedLoginsConcurrent: 100 logins at once for one user, 99 with
// wrong passwords and the right one last. The server reserves each
// attempt before the password check, so at most the limit (10 per
// minute) are checked, whatever the concurrency: every other answer is
// 429 TOOMANYREQUESTS with a Retry-After, the right one among them unless
// it was checked before the limit was reached, and once it is, the right
// password is refused too. A checked wrong password answers 401, a checked
// right one 200, so the answers count the checks.
func TestFailedLoginsConcurrent(t *testing.T) {
	t.Parallel()
	requireOwnServer(t, "it uses up the login limit of its source address, which every test shares on an external registry")
	victim := &authUser{name: "victim", password: newPassword(), grants: []authGrant{{"limits/", "pull"}}}
	reg := startAuthRegistry(t, []*authUser{victim})
	const logins, limit = 100, 10
	statuses := make([]int, logins)
	retryAfter := make([]string, logins)
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() {
			pw := "wrong-" + strconv.Itoa(i) + "-" + victim.password
			if i == logins-1 {
				pw = victim.password
			}
			resp, err := trySend(http.MethodGet, reg.url("/v2/"), basicHeader(victim.name, pw), nil)
			if err != nil {
				t.Errorf("login %d: %v", i, err)
				return
			}
			statuses[i], retryAfter[i] = resp.status, resp.header.Get("Retry-After")
		})
	}
	wg.Wait()
	count := map[int]int{}
	for i, s := range statuses {
		count[s]++
		if s == http.StatusTooManyRequests {
			if secs, err := strconv.Atoi(retryAfter[i]); err != nil || secs < 1 || secs > 61 {
				t.Errorf("login %d: 429 with Retry-After %q, want 1 to 61 seconds", i, retryAfter[i])
			}
		}
	}
	checked := count[http.StatusUnauthorized] + count[http.StatusOK]
	if checked > limit || checked+count[http.StatusTooManyRequests] != logins {
		t.Errorf("answers %v: want at most %d checked (401 or 200), the rest 429", count, limit)
	}
	if s := statuses[logins-1]; s != http.StatusOK && s != http.StatusTooManyRequests {
		t.Errorf("the right password in the flood: %d, want 200 (checked before the limit) or 429", s)
	}
	// The limit is reached: the right password is refused now.
	if resp := send(t, http.MethodGet, reg.url("/v2/"), basicHeader(victim.name, victim.password), nil); resp.status != http.StatusTooManyRequests {
		t.Errorf("the right password after the flood: %s, want 429", resp)
	}
}
