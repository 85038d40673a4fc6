// NEEDLETAIL_FUZZ_TARGET=TARGET needletail-fuzz [libFuzzer flags] [CORPUS...]   (scripts/fuzz builds it with -DFUZZING)
// needletail-fuzz TARGET FILE_OR_FOLDER...                (an ordinary build: replays inputs)
//
// The targets are the parsers that read what a client, a web server or a disk hands us:
// docs/SECURITY.md says what each covers and how long it has run.
import Glibc
@_spi(Fuzzing) import NeedletailServer
@_spi(Fuzzing) import NeedletailStore
import NeedletailStoreTestSupport
@_spi(Fuzzing) import NeedletailHTTP

/// The store target's log file (memory-backed when /dev/shm exists).
let scratch: String = {
    let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(dir)/needletail-fuzz-\(getpid()).log"
}()

let targets: [(name: String, run: @Sendable (UnsafeRawBufferPointer) -> Int)] = [
    ("http", ServerFuzzing.http),
    ("fastcgi", ServerFuzzing.fastCGI),
    ("tls", ServerFuzzing.tls),
    ("http2", ServerFuzzing.http2),
    ("decoders", WebFuzzing.decoders),
    ("store-log", { StoreFuzzing.logReader($0, path: scratch, record: SampleRecord.self, key: \.key) }),
]

/// The target named on the command line; exits with the usage when there is none.
func chooseTarget(_ name: String?) -> @Sendable (UnsafeRawBufferPointer) -> Int {
    guard let name, let t = targets.first(where: { $0.name == name }) else {
        let text =
            "usage: needletail-fuzz TARGET FILE_OR_FOLDER... (the fuzz build: NEEDLETAIL_FUZZ_TARGET=TARGET)\n       targets: "
            + targets.map(\.name).joined(separator: ", ") + "\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }
    return t.run
}

nonisolated(unsafe) var chosen: (UnsafeRawBufferPointer) -> Int = { _ in 0 }
nonisolated(unsafe) var sink = 0

#if FUZZING
    // No @main here: libFuzzer's own main runs and calls this. The target comes from the
    // environment (NEEDLETAIL_FUZZ_TARGET), since libFuzzer reads every argument as its own.
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        if !targetChosen {
            chosen = chooseTarget(getenv("NEEDLETAIL_FUZZ_TARGET").map { String(cString: $0) })
            targetChosen = true
        }
        sink &+= chosen(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
    nonisolated(unsafe) var targetChosen = false
#else
    /// Replays one file, or every file in a folder; returns how many.
    func replay(_ path: String) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let text = "needletail-fuzz: \(path): \(String(cString: strerror(errno)))\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            exit(1)
        }
        if st.st_mode & S_IFMT == S_IFDIR {
            guard let dir = opendir(path) else { return 0 }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if !name.hasPrefix(".") { names.append(name) }
            }
            return names.sorted().reduce(0) { $0 + replay(path + "/" + $1) }
        }
        guard let file = fopen(path, "rb") else { return 0 }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        sink &+= bytes.withUnsafeBytes { chosen($0) }
        return 1
    }

    @main
    enum Replay {
        static func main() {
            let arguments = CommandLine.arguments
            chosen = chooseTarget(arguments.count > 1 ? arguments[1] : nil)
            let count = arguments.dropFirst(2).reduce(0) { $0 + replay($1) }
            print("needletail-fuzz \(arguments[1]): \(count) inputs replayed without a crash")
        }
    }
#endif
