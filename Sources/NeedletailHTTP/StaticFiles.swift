import Glibc
import NeedletailBytes

/// Files from a public folder: sendfile(2) natively, ETag and Last-Modified with conditional
/// requests (304), single byte ranges (206, 416), MIME types by extension, and no way out of
/// the folder (no `..`, no hidden files, no symlink leading elsewhere).
public struct StaticFiles: Sendable {
    /// The folder, resolved (no symlinks).
    public let root: String
    /// The URL prefix they are served under, e.g. `/static/`.
    public let prefix: String
    /// `Cache-Control: public, max-age=` this many seconds.
    public let maxAge: Int

    /// Nil when `root` is not a directory.
    public init?(root: String, prefix: String = "/static/", maxAge: Int = 3600) {
        guard let resolved = realpath(root, nil) else { return nil }
        defer { free(resolved) }
        var st = stat()
        guard stat(resolved, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
        self.root = String(cString: resolved)
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.maxAge = maxAge
    }

    /// The answer for `request` if its path is under `prefix`, else nil.
    public func respond(to request: Request) -> Response? {
        let path = request.path
        guard path.hasPrefix(prefix) else { return nil }
        guard request.method == .get || request.method == .head else {
            var r = Router.errorPage(.methodNotAllowed, detail: "Files are only read here.")
            r.addHeader("Allow", "GET, HEAD")
            return r
        }
        let relative = path.dropFirst(prefix.count)
        let segments = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard !relative.isEmpty, !segments.contains(where: { $0.isEmpty || $0.hasPrefix(".") || $0.contains("\0") || $0.contains("\\") })
        else {
            return Self.notFound()
        }
        // The resolved path must still be inside the folder (a symlink may point anywhere).
        guard let real = realpath(root + "/" + relative, nil) else { return Self.notFound() }
        let full = String(cString: real)
        free(real)
        guard full.hasPrefix(root + "/"), let file = OpenFile(path: full) else {
            return Self.notFound()
        }
        var st = stat()
        guard fstat(file.fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            return Self.notFound()
        }
        let size = Int(st.st_size)
        let mtime = Int(st.st_mtim.tv_sec)
        let etag = "\"" + String(mtime, radix: 16) + "-" + String(size, radix: 16) + "\""
        var headers: [(name: String, value: String)] = [
            ("ETag", etag), ("Last-Modified", HTTPDate.format(mtime)), ("Cache-Control", "public, max-age=\(maxAge)"),
            ("Accept-Ranges", "bytes"), ("X-Content-Type-Options", "nosniff"),
        ]
        if Self.notModified(request, etag: etag, mtime: mtime) {
            return Response(status: .notModified, headers: headers)
        }
        let type = MIMEType.forPath(full)
        var range = 0..<size
        var status = HTTPStatus.ok
        if let spec = request.headers["range"], Self.ifRangeAllows(request, etag: etag) {
            switch Self.parseRange(spec, size: size) {
            case .whole: break
            case .part(let r):
                range = r
                status = .partialContent
                headers.append(("Content-Range", "bytes \(r.lowerBound)-\(r.upperBound - 1)/\(size)"))
            case .unsatisfiable:
                headers.append(("Content-Range", "bytes */\(size)"))
                var r = Router.errorPage(.rangeNotSatisfiable, detail: "The range is outside the file.")
                r.headers += headers
                return r
            }
        }
        var r = Response(status: status, contentType: type, headers: headers)
        r.body = .file(FileRegion(file: file, offset: range.lowerBound, count: range.count))
        return r
    }

    static func notFound() -> Response { Router.errorPage(.notFound, detail: "No file at this address.") }

    static func notModified(_ request: Request, etag: String, mtime: Int) -> Bool {
        if let inm = request.headers.combined("if-none-match") {
            return inm.split(separator: ",").contains { tag in
                let t = tag.drop(while: { $0 == " " })
                return t == "*" || t == etag || t == "W/" + etag
            }
        }
        if let ims = request.headers["if-modified-since"], let since = HTTPDate.parse(ims) {
            return mtime <= since
        }
        return false
    }

    static func ifRangeAllows(_ request: Request, etag: String) -> Bool {
        guard let ifRange = request.headers["if-range"] else { return true }
        return ifRange == etag
    }

    enum RangeAnswer: Equatable {
        case whole
        case part(Range<Int>)
        case unsatisfiable
    }

    /// One `bytes=` range (`a-b`, `a-`, `-n`). Several ranges, or a syntax error, give the whole
    /// file (RFC 9110 lets a server ignore Range).
    static func parseRange(_ spec: String, size: Int) -> RangeAnswer {
        guard spec.hasPrefix("bytes="), !spec.contains(",") else { return .whole }
        let r = spec.dropFirst(6).trimmingSpaces
        guard let dash = r.firstIndex(of: "-") else { return .whole }
        let a = r[..<dash], b = r[r.index(after: dash)...]
        if a.isEmpty {
            guard let n = Int(b), n > 0 else { return n0(b) }
            return size == 0 ? .unsatisfiable : .part(max(0, size - n)..<size)
        }
        guard let start = Int(a), start >= 0 else { return .whole }
        if start >= size { return .unsatisfiable }
        if b.isEmpty { return .part(start..<size) }
        guard let end = Int(b), end >= start else { return .whole }
        return .part(start..<min(end + 1, size))
    }

    private static func n0(_ b: Substring) -> RangeAnswer { Int(b) == 0 ? .unsatisfiable : .whole }
}

extension Substring {
    var trimmingSpaces: Substring { drop(while: { $0 == " " }) }
}
