"""The one library of the scripts that run real servers: the security checks (exhaustion,
faults, differential, stress, validate-html), the benchmarks (Benchmarks/compare,
parked-bench, callgrind) and their helpers: ports, processes and their CPU time and memory,
nginx configurations, the shipped config files, wrk and ab output, C clients, the demo
process, reading answers, probes, the board's forms, a PostgreSQL server of its own."""
import os, pwd, re, resource, shutil, socket, subprocess, sys, tempfile, time

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

def wait_port(port, timeout=10.0):
    """True once something accepts on 127.0.0.1:port (within `timeout` seconds)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False

def wait_path(path, timeout=10.0):
    """True once `path` exists (a unix socket being created)."""
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False

HZ = os.sysconf("SC_CLK_TCK")

def process_tree(pid):
    """pid and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except OSError:
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out

def cpu_seconds(pids):
    """User and system CPU time of the processes `pids`, in seconds."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / HZ

def rss_bytes(pids):
    """Resident memory of the processes `pids` (a list, or one pid), in bytes."""
    total = 0
    for p in ([pids] if isinstance(pids, int) else pids):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total

def shipped(relative, replacements=()):
    """A file the project ships (nginx/…, lighttpd/…) with its example paths and ports replaced."""
    with open(os.path.join(ROOT, relative)) as f:
        text = f.read()
    for a, b in replacements:
        text = text.replace(a, b)
    return text

def compile_c(name, source=None):
    """Builds Benchmarks/<name>.c (or `source`) with the Swift toolchain's clang (there wherever
    swift is; gcc may not be); returns the binary's path."""
    out = os.path.join(tempfile.gettempdir(), f"needletail-{name}")
    subprocess.run([shutil.which("clang") or "cc", "-O2", "-o", out, source or os.path.join(ROOT, "Benchmarks", f"{name}.c")], check=True)
    return out

def parse_latency(text, pattern):
    """A latency `pattern` (value and unit) found in wrk's output, in ms; None when absent."""
    m = re.search(pattern, text)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[m.group(2)]

def parse_wrk(out):
    """wrk --latency's output: requests, rps, max/p50/p99 ms and errors (non-2xx and socket
    errors); None when wrk printed no result."""
    m = re.search(r"(\d+) requests in ([\d.]+)s", out)
    r = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or not r:
        return None
    errors = 0
    e = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if e:
        errors += int(e.group(1))
    s = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if s:
        errors += sum(int(x) for x in s.groups())
    return {
        "requests": int(m.group(1)), "rps": float(r.group(1)), "errors": errors,
        "max_ms": parse_latency(out, r"Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)"),
        "p50_ms": parse_latency(out, r"\s50%\s+([\d.]+)(us|ms|s)"),
        "p99_ms": parse_latency(out, r"\s99%\s+([\d.]+)(us|ms|s)"),
    }

def parse_ab(out):
    """ab's output: rps, failed requests, p50/p99 ms; None when ab printed no result."""
    m = re.search(r"Requests per second:\s+([\d.]+)", out)
    if not m:
        return None
    p50 = re.search(r"^\s+50%\s+(\d+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\d+)", out, re.M)
    return {"rps": float(m.group(1)), "errors": int(re.search(r"Failed requests:\s+(\d+)", out).group(1)),
            "p50_ms": float(p50.group(1)) if p50 else None, "p99_ms": float(p99.group(1)) if p99 else None}

NGINX_CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx-{tag}.pid;
error_log {tmp}/nginx-{tag}-error.log;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body-{tag};
    proxy_temp_path {tmp}/proxy-{tag};
    fastcgi_temp_path {tmp}/fastcgi-{tag};
    uwsgi_temp_path {tmp}/uwsgi-{tag};
    scgi_temp_path {tmp}/scgi-{tag};
    {body}
}}
"""

def nginx_conf(tmp, tag, http_body):
    """Writes an nginx.conf for a foreground nginx with one worker, its temporary files in `tmp`
    and `http_body` inside `http { }`; returns nginx's command line."""
    conf = os.path.join(tmp, f"nginx-{tag}.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(tmp=tmp, tag=tag, user="user root;" if os.getuid() == 0 else "", body=http_body))
    return ["nginx", "-p", tmp, "-c", conf]

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
    """Starts nginx in the foreground (see `nginx_conf`) and waits until it listens on `port`."""
    p = subprocess.Popen(nginx_conf(tmp, str(port), http_body), stderr=subprocess.DEVNULL)
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

def pg_bin():
    """The newest PostgreSQL's programs (Debian: /usr/lib/postgresql/N/bin)."""
    root = "/usr/lib/postgresql"
    versions = sorted(int(v) for v in os.listdir(root) if v.isdigit()) if os.path.isdir(root) else []
    if not versions:
        sys.exit("PostgreSQL is not installed (scripts/setup installs it)")
    return f"{root}/{versions[-1]}/bin"

def postgres_server(folder, port, settings=(), cpu=None, listen="127.0.0.1", lifetime=1800):
    """initdb into `folder` and start a PostgreSQL there (as user postgres when run as root),
    listening on `listen`:`port` and a unix socket in `folder`, stopping by itself after
    `lifetime` seconds; `settings` are extra "name=value" for -c. Returns the process once
    it accepts connections."""
    bin = pg_bin()
    prefix = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        prefix = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
    subprocess.run(prefix + [f"{bin}/initdb", "-D", f"{folder}/data", "-U", "postgres", "-A", "trust",
                             "--no-sync", "--locale=C", "-E", "UTF8"], check=True, stdout=subprocess.DEVNULL)
    args = [f"{bin}/postgres", "-D", f"{folder}/data", "-k", folder, "-p", str(port), "-c", f"listen_addresses={listen}"]
    for setting in settings:
        args += ["-c", setting]
    server = subprocess.Popen(prefix + (["taskset", "-c", cpu] if cpu else []) + ["timeout", "-s", "INT", str(lifetime)] + args,
                              stdout=subprocess.DEVNULL, stderr=open(f"{folder}/postgres.log", "w"))
    host = listen.split(",")[0]
    for _ in range(300):
        if subprocess.run([f"{bin}/pg_isready", "-q", "-h", host, "-p", str(port)]).returncode == 0:
            return server
        if server.poll() is not None:
            break
        time.sleep(0.1)
    server.kill()
    sys.exit(f"PostgreSQL did not start: {open(f'{folder}/postgres.log').read()[-2000:]}")
