// Command early413 is a reverse proxy that answers 413 to any request
// whose Content-Length is over a limit, at once, without reading its
// body, and forwards everything else: what a front door with a body cap
// does (CloudFront's viewer-request function in Skiff's pure-Lambda mode,
// or Lambda's own payload check). It exists to reproduce, without Skiff,
// a race in regclient (regctl) that such an answer exposes:
// scripts/repro-regctl-413.sh runs regctl through it in front of CNCF
// distribution (docs/clients.md, "regctl and an early 413").
//
//	early413 -listen 127.0.0.1:0 -to http://127.0.0.1:5000 -max 4194304
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	to := flag.String("to", "", "the registry to forward to (http://HOST:PORT)")
	maxBody := flag.Int64("max", 4<<20, "answer 413 to a declared body over this many bytes")
	addrFile := flag.String("addr-file", "", "write the listen address here once listening")
	flag.Parse()
	target, err := url.Parse(*to)
	if err != nil || target.Host == "" {
		log.Fatalf("early413: -to %q is not http://HOST:PORT", *to)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > *maxBody {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			fmt.Fprintf(w, `{"errors":[{"code":"SIZE_INVALID","message":"body over %d bytes"}]}`, *maxBody)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(l.Addr().String()+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("early413: listening on", l.Addr())
	log.Fatal(http.Serve(l, h))
}
