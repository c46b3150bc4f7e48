# A forwarding HTTP proxy to a registry that stalls GETs of one blob for STALL seconds.
import http.server, urllib.request, sys, time, socketserver
UP, STALL_HEX, STALL = sys.argv[1], sys.argv[2], float(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def fwd(self, method):
        if method == "GET" and STALL_HEX in self.path:
            sys.stderr.write(f"stalling {self.path} at {time.time():.3f}\n"); sys.stderr.flush()
            time.sleep(STALL)
            sys.stderr.write(f"releasing at {time.time():.3f}\n"); sys.stderr.flush()
        req = urllib.request.Request(UP + self.path, method=method)
        for k in ("Accept", "Authorization", "Range"):
            if self.headers.get(k): req.add_header(k, self.headers[k])
        try:
            r = urllib.request.urlopen(req)
            code, hdrs, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            code, hdrs, body = e.code, e.headers, e.read()
        self.send_response(code)
        for k, v in hdrs.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"): self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if method != "HEAD" else int(hdrs.get("Content-Length", 0))))
        self.end_headers()
        if method != "HEAD": self.wfile.write(body)
    def do_GET(self): self.fwd("GET")
    def do_HEAD(self): self.fwd("HEAD")
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer): daemon_threads = True
S(("127.0.0.1", int(sys.argv[4])), H).serve_forever()
