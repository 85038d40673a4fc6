// The data both pages are rendered from, the same for every engine.

struct BoardMessage: Sendable {
    let id: Int
    let author: String
    let time: String
    let text: String
}

struct Fortune: Sendable {
    let id: Int
    let message: String
}

enum BenchData {
    static let forums = ["Ubuntu", "Gentoo", "Debian"]
    static let forum = "Debian"

    /// 100 messages whose author, time and text all need escaping.
    static let messages: [BoardMessage] = (0..<100).map { i in
        BoardMessage(
            id: 1000 + i,
            author: "user\(i % 7) <TLUG> & \"friends\"",
            time: "2026-11-27 05:\(10 + i % 50):00 UTC <today>",
            text: "Message \(i): <b>not bold</b> & 'quoted' \"text\" about apt-get, portage & dpkg -- see <http://example.org/\(i)>")
    }

    /// TechEmpower's fortunes, plus the one added at request time, sorted by message.
    static let fortunes: [Fortune] = {
        var f = [
            Fortune(id: 1, message: "fortune: No such file or directory"),
            Fortune(id: 2, message: "A computer scientist is someone who fixes things that aren't broken."),
            Fortune(id: 3, message: "After enough decimal places, nobody gives a damn."),
            Fortune(id: 4, message: "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
            Fortune(id: 5, message: "A computer program does what you tell it to do, not what you want it to do."),
            Fortune(id: 6, message: "Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen"),
            Fortune(id: 7, message: "Any program that runs right is obsolete."),
            Fortune(id: 8, message: "A list is only as strong as its weakest link. — Donald Knuth"),
            Fortune(id: 9, message: "Feature: A bug with seniority."),
            Fortune(id: 10, message: "Computers make very fast, very accurate mistakes."),
            Fortune(id: 11, message: "<script>alert(\"This should not be displayed in a browser alert box.\");</script>"),
            Fortune(id: 12, message: "フレームワークのベンチマーク"),
        ]
        f.append(Fortune(id: 0, message: "Additional fortune added at request time."))
        f.sort { $0.message < $1.message }
        return f
    }()
}
