import Glibc
import NeedletailBytes
import NeedletailHTTP
import NeedletailLoop
import NeedletailPOSIX
import Synchronization

/// What the server shares between its loops for the operator: when it started, whether it is
/// draining, and each loop with its context (to take snapshots on the loop that owns them).
final class ServerState: @unchecked Sendable {
    let started = secondsSinceBoot()
    let draining = Atomic<Bool>(false)
    // Set once per loop at its start, read by the status and metrics pages; guarded by `lock`.
    private let lock = Mutex<[LoopBox]>([])

    func register(_ loop: EventLoop, _ context: LoopContext) {
        let box = LoopBox(loop: loop, context: context)
        lock.withLock { $0.append(box) }
    }

    var loops: [(EventLoop, LoopContext)] { lock.withLock { $0 }.map { ($0.loop, $0.context) } }

    /// Every loop's counts, each taken on its own loop's thread.
    func snapshots() async -> [LoopSnapshot] {
        var all: [LoopSnapshot] = []
        for (loop, context) in loops {
            let box = LoopBox(loop: loop, context: context)
            let snapshot = await withCheckedContinuation { (c: CheckedContinuation<LoopSnapshot, Never>) in
                box.loop.execute {
                    let s = box.context.stats?.snapshot(connections: box.loop.connectionCount, suspended: box.context.suspended)
                    c.resume(returning: s ?? LoopSnapshot())
                }
            }
            all.append(snapshot)
        }
        return all
    }
}

/// A loop and its context carried to that loop's thread (they are only touched there).
struct LoopBox: @unchecked Sendable {
    let loop: EventLoop
    let context: LoopContext
}

/// The operator's paths in front of the app: health (200 serving, 503 draining), status (text,
/// or JSON with `?json`), Prometheus metrics. Each is off unless its path is set; they are meant
/// to be protected by the deployer (as php-fpm's `pm.status_path` is), e.g. by a listener on
/// loopback or an nginx `allow`/`deny`.
struct OperationsResponder: Responder {
    let app: any Responder
    let state: ServerState
    let health: [UInt8]?, status: [UInt8]?, metrics: [UInt8]?
    let gauges: [StatusGauge]

    init(app: any Responder, state: ServerState, configuration: ServerConfiguration) {
        self.app = app
        self.state = state
        health = configuration.healthPath.map { Array($0.utf8) }
        status = configuration.statusPath.map { Array($0.utf8) }
        metrics = configuration.metricsPath.map { Array($0.utf8) }
        gauges = configuration.gauges
    }

    func respond(to request: Request) -> Response {
        let which = request.withPathBytes { path -> Int in
            if let h = health, h.elementsEqual(path) { return 1 }
            if let s = status, s.elementsEqual(path) { return 2 }
            if let m = metrics, m.elementsEqual(path) { return 3 }
            return 0
        }
        var r: Response
        switch which {
        case 1: r = healthResponse()
        case 2:
            let json = request.query["json"] != nil
            r = .pending(PendingReply(request: request) { [state, gauges] _ in
                let text = Self.statusText(await state.snapshots(), state: state, gauges: gauges, json: json)
                return Self.plain(text, type: json ? "application/json" : Response.textType)
            })
        case 3:
            r = .pending(PendingReply(request: request) { [state, gauges] _ in
                Self.plain(Self.prometheus(await state.snapshots(), state: state, gauges: gauges), type: "text/plain; version=0.0.4; charset=utf-8")
            })
        default: return app.respond(to: request)
        }
        r.route = request.path
        return r
    }

    private func healthResponse() -> Response {
        if state.draining.load(ordering: .relaxed) {
            var r = Self.plain("draining\n", type: Response.textType, status: .serviceUnavailable)
            r.addHeader("Retry-After", "1")
            return r
        }
        return Self.plain("ok\n", type: Response.textType)
    }

    static func plain(_ text: String, type: String, status: HTTPStatus = .ok) -> Response {
        var body = Chunks()
        body.append(unescaped: text)
        return Response(status: status, contentType: type, headers: [("Cache-Control", "no-store")], body: body)
    }

    static func total(_ snapshots: [LoopSnapshot]) -> LoopSnapshot {
        var t = LoopSnapshot()
        for s in snapshots { t.merge(s) }
        return t
    }

    /// php-fpm's status page, in Needletail's terms.
    static func statusText(_ snapshots: [LoopSnapshot], state: ServerState, gauges: [StatusGauge], json: Bool) -> String {
        let t = total(snapshots)
        var fields: [(String, String)] = [
            ("uptime seconds", "\(secondsSinceBoot() - state.started)"),
            ("loops", "\(snapshots.count)"),
            ("draining", state.draining.load(ordering: .relaxed) ? "true" : "false"),
            ("connections open", "\(t.connections)"),
            ("requests served", "\(t.requests)"),
            ("requests waiting", "\(t.suspended)"),
            ("streams started", "\(t.streams)"),
            ("body bytes sent", "\(t.bodyBytes)"),
        ]
        for (i, name) in ["other", "1xx", "2xx", "3xx", "4xx", "5xx"].enumerated() where i > 0 {
            fields.append(("responses \(name)", "\(t.byClass[i])"))
        }
        for g in gauges { fields.append((g.name, number(g.read()))) }
        if json {
            let body = fields.map { key, value in
                let isNumber = Double(value) != nil || value == "true" || value == "false"
                return "\"\(key.replacingSpaces)\": " + (isNumber ? value : "\"\(value)\"")
            }.joined(separator: ", ")
            return "{" + body + "}\n"
        }
        let width = fields.map(\.0.count).max() ?? 0
        return fields.map { $0.0 + ":" + String(repeating: " ", count: width - $0.0.count + 1) + $0.1 }.joined(separator: "\n") + "\n"
    }

    /// Prometheus text exposition (format 0.0.4), written directly (docs/OPERATIONS.md says why
    /// not swift-metrics).
    static func prometheus(_ snapshots: [LoopSnapshot], state: ServerState, gauges: [StatusGauge]) -> String {
        let t = total(snapshots)
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        metric("needletail_uptime_seconds", "gauge", "Seconds since the server started.", "\(secondsSinceBoot() - state.started)")
        metric("needletail_loops", "gauge", "Event loops (threads).", "\(snapshots.count)")
        metric("needletail_connections_open", "gauge", "Connections open now.", "\(t.connections)")
        metric("needletail_requests_waiting", "gauge", "Requests whose async handler is suspended now.", "\(t.suspended)")
        metric("needletail_streams_started_total", "counter", "Streamed answers begun (event streams, parked polls).", "\(t.streams)")
        metric("needletail_response_body_bytes_total", "counter", "Body bytes of the answers sent.", "\(t.bodyBytes)")
        metric("needletail_draining", "gauge", "1 while stopping (the health path answers 503).", state.draining.load(ordering: .relaxed) ? "1" : "0")
        out += "# HELP needletail_requests_total Requests answered, by route and status.\n# TYPE needletail_requests_total counter\n"
        let keys = t.routes.keys.sorted { ($0.route, $0.status) < ($1.route, $1.status) }
        for k in keys {
            out += "needletail_requests_total{route=\"\(label(k.route))\",status=\"\(k.status)\"} \(t.routes[k]!.count)\n"
        }
        out += "# HELP needletail_request_duration_seconds Time from a request's arrival to its answer, by route and status.\n"
        out += "# TYPE needletail_request_duration_seconds histogram\n"
        for k in keys {
            let r = t.routes[k]!
            let labels = "route=\"\(label(k.route))\",status=\"\(k.status)\""
            var cumulative = 0
            for (i, le) in durationBuckets.enumerated() {
                cumulative += r.buckets[i]
                out += "needletail_request_duration_seconds_bucket{\(labels),le=\"\(number(le))\"} \(cumulative)\n"
            }
            out += "needletail_request_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(r.count)\n"
            out += "needletail_request_duration_seconds_sum{\(labels)} \(number(r.seconds))\n"
            out += "needletail_request_duration_seconds_count{\(labels)} \(r.count)\n"
        }
        for g in gauges { metric(g.name, "gauge", g.help, number(g.read())) }
        return out
    }

    /// A label value escaped as the exposition format says (`\`, `"`, newline).
    static func label(_ s: String) -> String {
        s.replacingOccurrences("\\", "\\\\").replacingOccurrences("\"", "\\\"").replacingOccurrences("\n", "\\n")
    }

    static func number(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int(v)) }
        return "\(v)"
    }
}

extension String {
    fileprivate var replacingSpaces: String { String(map { $0 == " " ? "_" : $0 }) }

    fileprivate func replacingOccurrences(_ a: Character, _ b: String) -> String {
        var out = ""
        for c in self { if c == a { out += b } else { out.append(c) } }
        return out
    }
}
