"""Shared pieces of the scripts that run the demo under attack or faults (exhaustion, faults,
differential): ports, the server process, reading answers, probes, the board's forms."""
import os, re, resource, socket, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = 1 << 20

def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p

def wait_for_port(port, proc, what, log=None):
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.025)
    sys.exit(f"{what} did not start" + (f":\n{log()}" if log else ""))

def nginx(tmp, http_body, port):
    """Starts nginx in the foreground (one worker, its temporary files in `tmp`) with
    `http_body` inside `http { }`, and waits until it listens on `port`."""
    conf = os.path.join(tmp, f"nginx-{port}.conf")
    user = "user root;" if os.getuid() == 0 else ""
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx-{port}.pid; error_log {tmp}/nginx-{port}-error.log; {user}
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  {http_body} }}
""")
    p = subprocess.Popen(["nginx", "-p", tmp, "-c", conf], stderr=subprocess.DEVNULL)
    wait_for_port(port, p, "nginx")
    return p

def release_demo():
    """The demo's release build (built if needed), or $NEEDLETAIL_DEMO."""
    binary = os.environ.get("NEEDLETAIL_DEMO")
    if binary:
        return binary
    subprocess.run(["swift", "build", "-c", "release", "--product", "needletail-demo"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(ROOT, ".build/release/needletail-demo")

class Demo:
    """needletail-demo serving HTTP on a free port (or FastCGI on `fastcgi`), its output in a log."""
    def __init__(self, binary, tmp, data=None, public=None, fd_limit=None, fsize_limit=None, fastcgi=None, extra=()):
        self.port = free_port()
        self.log = open(os.path.join(tmp, f"demo-{self.port}.log"), "w+")
        def limits():
            if fd_limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))
            if fsize_limit:
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_limit, resource.RLIM_INFINITY))
        args = [binary, "--http", f"127.0.0.1:{self.port}", "--data", data or os.path.join(tmp, f"data-{self.port}"),
                "--log-level", "warning", *extra]
        if public:
            args += ["--public", public]
        if fastcgi:
            args += ["--fastcgi", fastcgi]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=limits)
        wait_for_port(self.port, self.proc, "needletail-demo", self.logged)

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) * 1024

    def logged(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig=None):
        if sig:
            self.proc.send_signal(sig)
        else:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

def read_response(s, deadline):
    """Reads one response (Content-Length framed) from s; returns (status, head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        s.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed before the head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(body) < n:
        s.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed in the body")
        body += chunk
    return status, head, body

def probe(port):
    """Milliseconds for a new client to connect, ask for /hello and read the whole answer."""
    start = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET /hello?name=probe HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
        status, _, body = read_response(s, start + 2)
        s.close()
        if status != 200 or b"Hello probe" not in body:
            return float("inf")
    except OSError:
        return float("inf")
    return (time.monotonic() - start) * 1000

class BoardClient:
    """One browser-less visitor of the board on its own keep-alive connection: a session
    cookie and the post form's action."""
    def __init__(self, port, forum="Debian"):
        self.port, self.forum = port, forum
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.cookie = b""
        self.action = None
        self.view()

    def request(self, data):
        self.sock.sendall(data)
        return read_response(self.sock, time.monotonic() + 10)

    def view(self):
        status, head, body = self.request(b"GET /board?forum=" + self.forum.encode() + b" HTTP/1.1\r\nHost: b\r\n" +
                                          (b"Cookie: " + self.cookie + b"\r\n" if self.cookie else b"") + b"\r\n")
        m = re.search(rb"(?i)set-cookie: (nt_session=[^;\r]+)", head)
        if m:
            self.cookie = m.group(1)
        m = re.search(rb'<form[^>]*action="(/_nt/a/[^"]+)"', body)
        self.action = m.group(1) if m else None
        return status, body

    def post(self, text):
        """Posts `text`; returns the status (303: acknowledged)."""
        form = b"text=" + text.encode()
        status, _, _ = self.request(b"POST " + self.action + b" HTTP/1.1\r\nHost: b\r\nCookie: " + self.cookie +
                                    b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(form) + form)
        return status

def board_page(port, forum="Debian"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /board?forum=" + forum.encode() + b" HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
    status, _, body = read_response(s, time.monotonic() + 10)
    s.close()
    return status, body.decode("utf-8", "replace")
