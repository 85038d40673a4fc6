import CNeedletailLinux
import Glibc
import Synchronization
import Testing
@testable import NeedletailLoop

@Suite struct SocketAddressTests {
    @Test func parsing() throws {
        #expect(try SocketAddress(parsing: "127.0.0.1:8080") == .ipv4(host: "127.0.0.1", port: 8080))
        #expect(try SocketAddress(parsing: ":80") == .ipv4(host: "0.0.0.0", port: 80))
        #expect(try SocketAddress(parsing: "[::1]:9000") == .ipv6(host: "::1", port: 9000))
        #expect(try SocketAddress(parsing: "unix:/run/app.sock") == .unix(path: "/run/app.sock"))
        #expect(throws: SocketError.self) { try SocketAddress(parsing: "localhost") }
        #expect(throws: SocketError.self) { try SocketAddress(parsing: "1.2.3.4:99999") }
        #expect(throws: SocketError.self) { try SocketAddress(parsing: "unix:") }
        #expect(throws: SocketError.self) { try ListeningSocket.bind(.ipv4(host: "not-an-ip", port: 1)) }
    }
}

/// A handler that records timeouts (timer tests).
final class RecordingHandler: ConnectionHandler {
    var timeouts = 0
    func received(_ bytes: UnsafeRawBufferPointer, on connection: Connection) -> Int { bytes.count }
    func peerClosed(_ connection: Connection) {}
    func timedOut(_ connection: Connection) { timeouts += 1 }
    func shutdownRequested(_ connection: Connection) -> Bool { true }
    func closed(_ connection: Connection) {}
}

@Suite struct EPollTokenTests {
    @Test func kindsRoundTripAndGenerationsDiffer() {
        #expect(EPollToken.wake.kind == .wake)
        #expect(EPollToken.listener(7).kind == .listener(index: 7))
        let a = EPollToken.connection(fd: 42, generation: 1), b = EPollToken.connection(fd: 42, generation: 2)
        #expect(a.kind == .connection(fd: 42) && b.kind == .connection(fd: 42))
        #expect(a != b, "the same fd reused is another token")
        #expect(EPollToken.connection(fd: 42, generation: 1 << 30) == EPollToken.connection(fd: 42, generation: 0), "30 bits of generation")
        #expect(EPollToken.connection(fd: Int32.max, generation: 0x3fff_ffff).kind == .connection(fd: Int(Int32.max)))
    }
}

@Suite struct TimerWheelTests {
    @Test func firesOnceAtTheDeadlineAndFollowsMoves() throws {
        let loop = try EventLoop()
        var wheel = TimerWheel(now: 1000)
        let a = Connection(fd: -1, loop: loop, token: EPollToken(raw: 1), listenerIndex: 0)
        let b = Connection(fd: -1, loop: loop, token: EPollToken(raw: 2), listenerIndex: 0)
        let c = Connection(fd: -1, loop: loop, token: EPollToken(raw: 3), listenerIndex: 0)
        wheel.set(a, deadline: 1010)
        wheel.set(b, deadline: 1060)
        wheel.set(c, deadline: 1300)  // beyond one turn of the wheel
        #expect(wheel.advance(to: 1009).isEmpty)
        #expect(wheel.advance(to: 1010).map(\.token.raw) == [1])
        // Pushed later: lazily moved on when its slot comes up.
        wheel.set(b, deadline: 1070)
        #expect(wheel.advance(to: 1065).isEmpty)
        // Pulled earlier: moved at once.
        wheel.set(b, deadline: 1066)
        #expect(wheel.advance(to: 1066).map(\.token.raw) == [2])
        #expect(wheel.advance(to: 1299).isEmpty)
        #expect(wheel.advance(to: 1300).map(\.token.raw) == [3])
        #expect(wheel.count == 0)
        // Cleared deadlines never fire.
        wheel.set(a, deadline: 1305)
        wheel.set(a, deadline: 0)
        #expect(wheel.advance(to: 1400).isEmpty)
    }

    @Test func removeKeepsOthers() throws {
        let loop = try EventLoop()
        var wheel = TimerWheel(now: 0)
        let conns = (0..<10).map { Connection(fd: -1, loop: loop, token: EPollToken(raw: UInt64($0)), listenerIndex: 0) }
        for c in conns { wheel.set(c, deadline: 5) }
        wheel.remove(conns[3])
        wheel.remove(conns[9])
        #expect(Set(wheel.advance(to: 5).map(\.token.raw)) == Set([0, 1, 2, 4, 5, 6, 7, 8]))
    }
}

@Suite struct LoopTaskTests {
    @Test func executeRunsOnTheLoopAndShutdownEndsIt() throws {
        let group = try LoopGroup(count: 2)
        try group.start { _ in }
        let done = Atomic<Int>(0)
        for loop in group.loops {
            for _ in 0..<100 { loop.execute { done.add(1, ordering: .relaxed) } }
        }
        var waited = 0
        while done.load(ordering: .relaxed) < 200 && waited < 200 { usleep(10_000); waited += 1 }
        #expect(done.load(ordering: .relaxed) == 200)
        group.shutdown(grace: 1)
        group.join()
        #expect(group.runningLoops == 0)
    }
}

@Suite struct ConnectionStateTests {
    let inOnly = nt_epollin() | nt_epollrdhup()

    @Test func closingAfterFlushKeepsLingerOnceAskedAndNeverReopens() {
        var s = ConnectionState()
        #expect(s.outputFlushed() == .stay, "an open connection stays")
        s.closeAfterFlush(linger: true)
        s.closeAfterFlush(linger: false)
        #expect(s.phase == .closingAfterFlush(linger: true) && s.isClosing)
        #expect(s.outputFlushed() == .shutWriteAndLinger)
        #expect(s.phase == .lingering && s.isClosing)
        s.closeAfterFlush(linger: false)
        #expect(s.phase == .lingering, "lingering is not undone")
        s.phase = .closed
        s.closeAfterFlush(linger: true)
        #expect(s.phase == .closed && !s.isClosing)
    }

    @Test func aPeerThatLeftIsNotLingeredFor() {
        var s = ConnectionState()
        s.peerHalfClosed = true
        s.closeAfterFlush(linger: true)
        #expect(s.outputFlushed() == .close)
        var plain = ConnectionState()
        plain.closeAfterFlush(linger: false)
        #expect(plain.outputFlushed() == .close)
    }

    @Test func readInterestIsDroppedOnlyWhenInputArrivesUnwanted() {
        var s = ConnectionState()
        #expect(s.wantedEvents(afterInput: false) == inOnly)
        s.readingPaused = true
        #expect(s.wantedEvents(afterInput: false) == inOnly, "pausing alone costs no epoll_ctl")
        #expect(s.wantedEvents(afterInput: true) == nt_epollrdhup(), "input while paused drops EPOLLIN, keeps RDHUP")
        s.interest = nt_epollrdhup()
        s.readingPaused = false
        #expect(s.wantedEvents(afterInput: false) == inOnly, "resuming asks for input again")
    }

    @Test func throttledHalfClosedLingeringAndWritable() {
        var s = ConnectionState()
        s.throttled = true
        #expect(s.wantedEvents(afterInput: true) == 0, "throttled: neither input nor RDHUP until the output drains")
        s.throttled = false
        s.wantWritable = true
        #expect(s.wantedEvents(afterInput: false) == inOnly | nt_epollout())
        s.wantWritable = false
        s.peerHalfClosed = true
        #expect(s.wantedEvents(afterInput: false) == 0, "a peer that left: nothing to read")
        s.phase = .lingering
        #expect(s.wantedEvents(afterInput: false) == nt_epollin(), "lingering reads to drain")
        #expect(!s.mayRead || s.isLingering)
    }
}
