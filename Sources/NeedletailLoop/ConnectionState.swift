import CNeedletailLinux

/// Where a connection is in its life and what it wants from epoll, as a value: no system call
/// is made here, so that each transition has a unit test of its own (as Hummingbird's
/// connection state machine has). `Connection` makes the system calls the transitions ask for.
struct ConnectionState: Equatable {
    /// The connection's life, in order.
    enum Phase: Equatable {
        /// Reading and writing.
        case open
        /// Closes once everything queued is written; with `linger`, the write side is shut
        /// first and input drained for a moment, so that unread request bytes do not make the
        /// kernel reset the connection before the client has read the answer.
        case closingAfterFlush(linger: Bool)
        /// The write side is shut; input is read and dropped until the peer closes or the
        /// linger deadline passes.
        case lingering
        /// Closed: nothing more happens.
        case closed
    }

    var phase = Phase.open
    /// The handler asked not to read (a parked answer, a stream in progress).
    var readingPaused = false
    /// Reading stopped because the queued output or the unconsumed input is over its cap.
    var throttled = false
    /// The peer shut its sending side (read returned 0, or EPOLLRDHUP while not reading).
    var peerHalfClosed = false
    /// Output is waiting for the socket to become writable.
    var wantWritable = false
    /// The events registered with epoll now.
    var interest: UInt32 = nt_epollin() | nt_epollrdhup()

    var isClosed: Bool { phase == .closed }
    var isLingering: Bool { phase == .lingering }
    /// Whether the connection is on its way out (closing after a flush, or lingering).
    var isClosing: Bool {
        switch phase {
        case .closingAfterFlush, .lingering: return true
        case .open, .closed: return false
        }
    }

    /// `Connection.closeAfterFlush(linger:)`: lingering, once asked for, is kept.
    mutating func closeAfterFlush(linger: Bool) {
        switch phase {
        case .open: phase = .closingAfterFlush(linger: linger)
        case .closingAfterFlush(let l): phase = .closingAfterFlush(linger: l || linger)
        case .lingering, .closed: break
        }
    }

    /// What to do once the output queue is empty.
    enum AfterFlush: Equatable {
        /// Nothing: the connection stays.
        case stay
        /// Close it now.
        case close
        /// Shut the write side and linger (the state is already `.lingering`).
        case shutWriteAndLinger
    }

    /// The output queue has emptied.
    mutating func outputFlushed() -> AfterFlush {
        guard case .closingAfterFlush(let linger) = phase else { return .stay }
        if linger && !peerHalfClosed {
            phase = .lingering
            return .shutWriteAndLinger
        }
        return .close
    }

    /// The events the connection wants registered. Read interest is dropped lazily: pausing
    /// (a parked poll, a stream, output over its cap) keeps `EPOLLIN` registered until input
    /// actually arrives while unwanted (`afterInput`), so that a poll parked and answered costs
    /// no `epoll_ctl` at all when its client stays quiet, as it does. `EPOLLRDHUP` goes with
    /// read interest, and stays while reading is paused so that a peer leaving is seen then.
    func wantedEvents(afterInput: Bool) -> UInt32 {
        let wantsInput = isLingering || (!readingPaused && !throttled && !peerHalfClosed)
        var want: UInt32 = 0
        if wantsInput || (!afterInput && !peerHalfClosed && interest & nt_epollin() != 0) { want |= nt_epollin() }
        // Not while only throttled: a half-close then must wait until the output drains.
        if !peerHalfClosed && (readingPaused || want != 0) { want |= nt_epollrdhup() }
        if wantWritable { want |= nt_epollout() }
        return want
    }

    /// Whether input may be read now (not paused or throttled; lingering reads to drain).
    var mayRead: Bool { !readingPaused && !throttled }
}
