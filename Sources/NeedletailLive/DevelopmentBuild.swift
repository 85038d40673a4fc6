import Glibc
import NeedletailBytes
import NeedletailHTML
import NeedletailPOSIX
import Synchronization

/// Development mode (`scripts/dev`, docs/UPGRADE.md): the outcome of the last build, shown at
/// the top of every live page while it is an error, and gone once a build succeeds (the new
/// build then takes over, and every open page reloads itself).
///
/// The development script writes the compiler's errors to `statusFile` (empty: the build
/// succeeded); this process looks at the file four times a second and, when it changes,
/// notifies `DevelopmentBuild.channel`, whose region every `Page.document` carries.
public final class DevelopmentBuild: Sendable {
    /// The channel of the build's region.
    public static let channel: Channel = "nt:build"
    /// The file with the last build's errors.
    public let statusFile: String
    private let state = Mutex<(text: String, stamp: timespec, size: Int)>(("", timespec(), -1))

    public init(statusFile: String) {
        self.statusFile = statusFile
        _ = poll()
    }

    /// The errors of the last build ("" when it succeeded).
    public var errors: String { state.withLock { $0.text } }

    /// Reads the file if it changed; whether it did.
    func poll() -> Bool {
        var st = stat()
        guard stat(statusFile, &st) == 0 else {
            return state.withLock { s in
                defer { s = ("", timespec(), -1) }
                return !s.text.isEmpty
            }
        }
        let changed = state.withLock { $0.stamp.tv_sec != st.st_mtim.tv_sec || $0.stamp.tv_nsec != st.st_mtim.tv_nsec || $0.size != Int(st.st_size) }
        guard changed else { return false }
        var text = ""
        if let f = fopen(statusFile, "r") {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            fclose(f)
            text = String(decoding: buffer[0..<n], as: UTF8.self)
        }
        state.withLock { $0 = (text, st.st_mtim, Int(st.st_size)) }
        return true
    }

    /// Watches the file on a thread of its own, notifying `channel` on `channels` at each change.
    func start(_ channels: Channels) {
        do {
            _ = try POSIXThread.spawn(name: "build status", detached: true) { [self] in
                while true {
                    usleep(250_000)
                    if poll() { channels.notify(Self.channel) }
                }
            }
        } catch {
            reportToStandardError("needletail: cannot watch \(statusFile): \(error)")
        }
    }
}

/// The build's errors as the top of a page shows them (nothing when the build succeeded).
public struct BuildErrors: FlowContent, NonInteractive, FormFree {
    let text: String
    public func render(into out: inout HTMLOutput) {
        guard !text.isEmpty else { return }
        out.append("<pre role=\"alert\" style=\"background:#fee;color:#900;padding:1em;white-space:pre-wrap\">")
        out.appendText(text)
        out.append("</pre>")
    }
}

extension Page {
    /// The build's region when the app runs in development mode (`LiveAppCore.development`).
    @usableFromInline
    func developmentRegion() -> LiveRegion<BuildErrors>? {
        guard let development = app.development else { return nil }
        return live("nt-build", channels: [DevelopmentBuild.channel]) { _ in BuildErrors(text: development.errors) }
    }
}
