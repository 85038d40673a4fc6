/// Sites by host name: the `Host` of a request (without the port, any letter case) picks one;
/// aliases share a site; requests for unknown hosts (or none) go to the default.
public struct VirtualHosts: Responder {
    var sites: [String: any Responder] = [:]
    let fallback: any Responder

    public init(default site: any Responder) { fallback = site }

    /// Serves `names` (a host and its aliases) with `site`.
    public mutating func add(_ names: [String], _ site: any Responder) {
        for n in names { sites[n.lowercased()] = site }
    }

    public func respond(to request: Request) -> Response { site(for: request).respond(to: request) }

    /// The site `request`'s host names.
    func site(for request: Request) -> any Responder {
        guard var host = request.host?.lowercased() else { return fallback }
        if host.hasPrefix("[") {
            if let end = host.firstIndex(of: "]") { host = String(host[...end]) }
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        if host.hasSuffix(".") { host.removeLast() }
        return sites[host] ?? fallback
    }
}
