import NeedletailTestSupport
import Foundation
import Glibc
import Testing
@testable import NeedletailServer

@Suite("Streamed responses", .serialized)
struct StreamingTests {
    @Test func chunkedStreamThenPipelinedRequest() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("GET /stream?n=3 HTTP/1.1\r\nHost: t\r\n\r\nGET /hello?name=after HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.header("transfer-encoding") == "chunked")
            #expect(r.header("content-length") == nil)
            #expect(r.text == "part 0\npart 1\npart 2\n")
            #expect(try c.readResponse().text == "<h1>Hello after</h1>", "the pipelined request waits for the stream, then is answered")
        }
    }

    @Test func http10StreamIsRawAndCloses() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("GET /stream?n=2 HTTP/1.0\r\n\r\n")
            let raw = String(decoding: try c.readToEnd(), as: UTF8.self)
            #expect(raw.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(raw.contains("Connection: close"))
            #expect(!raw.contains("Transfer-Encoding"))
            #expect(raw.hasSuffix("\r\n\r\npart 0\npart 1\n"))
        }
    }

    @Test func headOfAStreamHasNoBody() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            let h = try c.readResponse(headOnly: true)
            #expect(h.header("transfer-encoding") == "chunked")
            #expect(try c.readResponse().text == "<h1>Hello world</h1>")
        }
    }

    @Test func clientGoingAwayCancelsTheStream() throws {
        let before = TestApp.cancelledStreams.load(ordering: .relaxed)
        try withServer { _, address in
            do {
                let c = try TestClient(address)
                try c.send("GET /forever HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try c.fill(), "the first event arrives")
            }  // the client closes here
            var waited = 0
            while TestApp.cancelledStreams.load(ordering: .relaxed) == before && waited < 200 {
                usleep(10_000)
                waited += 1
            }
            #expect(TestApp.cancelledStreams.load(ordering: .relaxed) > before, "the producer saw isCancelled")
            let d = try TestClient(address)
            try d.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try d.readResponse().status == 200)
        }
    }
}
