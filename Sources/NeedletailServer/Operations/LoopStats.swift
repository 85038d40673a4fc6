import NeedletailHTTP

/// A number the status page and the metrics show, read when they are asked for (the app's:
/// sessions, parked polls, the store's size…). `read` runs on a loop's thread: it must be
/// cheap and must not block.
public struct StatusGauge: Sendable {
    /// A Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), e.g. `needletail_sessions`.
    public let name: String
    public let help: String
    public let read: @Sendable () -> Double

    public init(_ name: String, help: String, read: @escaping @Sendable () -> Double) {
        self.name = name
        self.help = help
        self.read = read
    }
}

/// The request-duration histogram's upper bounds, in seconds (Prometheus `le`).
let durationBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/// One route and status's counts.
struct RouteStats: Sendable {
    var buckets = [Int](repeating: 0, count: durationBuckets.count)
    var count = 0
    var seconds = 0.0

    mutating func add(_ s: Double) {
        count += 1
        seconds += s
        if let i = durationBuckets.firstIndex(where: { s <= $0 }) { buckets[i] += 1 }
    }

    mutating func merge(_ other: RouteStats) {
        count += other.count
        seconds += other.seconds
        for i in buckets.indices { buckets[i] += other.buckets[i] }
    }
}

struct RouteKey: Hashable, Sendable {
    let route: String
    let status: Int
}

/// What one loop counted since it started (loop-confined; read through a snapshot taken on
/// the loop, so that counting needs no lock or atomic on the hot path).
final class LoopStats {
    var requests = 0
    var byClass = [Int](repeating: 0, count: 6)  // 1xx…5xx at 1…5; others at 0
    var bodyBytes = 0
    var streams = 0
    var routes: [RouteKey: RouteStats] = [:]
    /// Routes are the router's patterns, so few; a bound all the same (the rest are counted as "other").
    static let routeLimit = 1000

    func record(route: String?, status: Int, seconds: Double, bodyBytes: Int) {
        requests += 1
        byClass[(status >= 100 && status < 600) ? status / 100 : 0] += 1
        self.bodyBytes += bodyBytes
        var key = RouteKey(route: route ?? "unmatched", status: status)
        if routes[key] == nil && routes.count >= Self.routeLimit { key = RouteKey(route: "other", status: status) }
        routes[key, default: RouteStats()].add(seconds)
    }

    func snapshot(connections: Int, suspended: Int) -> LoopSnapshot {
        LoopSnapshot(
            requests: requests, byClass: byClass, bodyBytes: bodyBytes, streams: streams, routes: routes,
            connections: connections, suspended: suspended)
    }
}

/// A loop's counts at one moment, carried to the loop that answers the status or metrics request.
struct LoopSnapshot: Sendable {
    var requests = 0
    var byClass = [Int](repeating: 0, count: 6)
    var bodyBytes = 0
    var streams = 0
    var routes: [RouteKey: RouteStats] = [:]
    var connections = 0
    var suspended = 0

    mutating func merge(_ o: LoopSnapshot) {
        requests += o.requests
        for i in byClass.indices { byClass[i] += o.byClass[i] }
        bodyBytes += o.bodyBytes
        streams += o.streams
        connections += o.connections
        suspended += o.suspended
        for (k, v) in o.routes { routes[k, default: RouteStats()].merge(v) }
    }
}
