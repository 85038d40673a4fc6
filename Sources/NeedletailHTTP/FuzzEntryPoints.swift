/// Entry points for the fuzzer (`needletail-fuzz`, docs/SECURITY.md) and for the tests that
/// replay its corpus and the crashes it found. Not API: reached only with `@_spi(Fuzzing)`.
@_spi(Fuzzing) public enum WebFuzzing {
    /// Reads everything a handler may read of `request`, through the same decoders a handler
    /// uses (path, target, host, query, form, cookies, fields, typed parameters). Returns a
    /// count of what it saw, so that nothing is optimized away.
    public static func exercise(_ request: Request) -> Int {
        var seen = request.path.utf8.count + request.target.utf8.count + (request.host?.utf8.count ?? 0)
        seen &+= request.query.rawValue.utf8.count
        seen &+= request.query.values("a").count + (request.query["q"]?.utf8.count ?? 0)
        let form = request.form
        seen &+= form.values("text").count + (form["forum"]?.utf8.count ?? 0)
        seen &+= request.cookie("nt_session")?.utf8.count ?? 0
        for (name, value) in request.headers { seen &+= name.utf8.count + value.utf8.count }
        for (name, value) in request.trailers { seen &+= name.utf8.count + value.utf8.count }
        seen &+= request.headers.combined("accept")?.utf8.count ?? 0
        seen &+= (try? request.parameter("n", default: 0)) ?? 0
        seen &+= (try? request.parameter("x", default: 0.5)).map { $0.isNaN ? 0 : 1 } ?? 0
        seen &+= (try? request.parameter("b", default: false)) == true ? 1 : 0
        seen &+= request.remoteAddress.utf8.count
        return seen
    }

    /// The URL, query, cookie, form and parameter decoders on raw bytes: the first byte picks
    /// the decoder, the rest is its input.
    public static func decoders(_ data: UnsafeRawBufferPointer) -> Int {
        guard let selector = data.first else { return 0 }
        let input = Array(data.dropFirst())
        let text = String(decoding: input, as: UTF8.self)
        var seen = 0
        switch selector % 6 {
        case 0:
            input.withUnsafeBufferPointer { b in
                seen &+= PercentDecoding.isValid(b) ? 1 : 0
                seen &+= PercentDecoding.decode(b, plusIsSpace: true)?.utf8.count ?? 0
                seen &+= PercentDecoding.decode(b, plusIsSpace: false)?.utf8.count ?? 0
                seen &+= PercentDecoding.decodePath(b)?.utf8.count ?? 0
            }
        case 1:
            let query = QueryParameters(storage: input, range: 0..<input.count)
            seen &+= query.rawValue.utf8.count + query.values("a").count
            seen &+= query["b"]?.utf8.count ?? 0
            seen &+= query[text.prefix(3).description]?.utf8.count ?? 0
        case 2:
            let request = Request(method: .get, path: "/", headers: HeaderFields([("Cookie", text), ("Cookie", "a=b; " + text)]))
            seen &+= request.cookie("nt_session")?.utf8.count ?? 0
            seen &+= request.cookie(String(text.prefix(4)))?.utf8.count ?? 0
        case 3:
            let request = Request(
                method: .post, path: "/",
                headers: HeaderFields([("Content-Type", "application/x-www-form-urlencoded")]), body: input)
            seen &+= exercise(request)
        case 4:
            seen &+= Int(parameterText: text) ?? 0
            seen &+= Double(parameterText: text).map { $0.isFinite ? 1 : 2 } ?? 0
            seen &+= Bool(parameterText: text) == true ? 1 : 0
            seen &+= PercentDecoding.decode(text, plusIsSpace: true)?.utf8.count ?? 0
            seen &+= PercentDecoding.decodePathString(text)?.utf8.count ?? 0
        default:
            let query = QueryParameters(text)
            let request = Request(method: .get, path: "/", query: query, headers: HeaderFields([(text, text)]), host: text)
            seen &+= exercise(request)
        }
        return seen
    }
}
