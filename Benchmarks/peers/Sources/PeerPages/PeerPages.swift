/// The hello and fortunes pages as strings, the same bytes as the Needletail demo's.
public enum PeerPages {
    /// `& < >` as entities (element content; the same bytes as Needletail's text escaping).
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    public static func hello(_ name: String?) -> String { "<h1>Hello " + escape(name ?? "world") + "</h1>" }

    struct Fortune {
        let id: Int
        let message: String
    }

    static let stored: [Fortune] = [
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

    public static func fortunes() -> String {
        var all = stored
        all.append(Fortune(id: 0, message: "Additional fortune added at request time."))
        all.sort { $0.message < $1.message }
        var html = "<!DOCTYPE html>\n<html><head><title>Fortunes</title></head><body><table><tbody><tr><th>id</th><th>message</th></tr>"
        for f in all { html += "<tr><td>\(f.id)</td><td>" + escape(f.message) + "</td></tr>" }
        return html + "</tbody></table></body></html>"
    }
}
