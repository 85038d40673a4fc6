import NeedletailHTML

/// A channel: a named version counter that live regions show and `notify` bumps. A type of its
/// own, so that the page that shows a channel and the action that notifies it name the same
/// one; declare the app's channels once:
///
/// ```swift
/// extension Channel { static let counter: Channel = "counter" }
/// page.live("count", channels: [.counter]) { … }
/// action.notify(.counter)
/// ```
/// A channel made at run time (one per forum, say) is `Channel("forum:" + name)`.
public struct Channel: Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The name: carried by pages and polls (`name|version`), so it must not contain `|` or `;`.
    public let name: String

    public init(_ name: String) { self.name = name }
    public init(stringLiteral name: String) { self.name = name }
    public var description: String { name }
}

/// A channel at a version: what a viewer has seen of it.
public struct ChannelVersion: Sendable, Equatable {
    public let channel: Channel
    public var version: UInt64

    public init(_ channel: Channel, _ version: UInt64) {
        self.channel = channel
        self.version = version
    }
}

/// The versions of the channels a page shows, in the order the page first showed them: what a
/// page carries (`data-nt-channels`), a poll sends back, a notify hands a waiting subscriber,
/// and an answer brings (`data-nt-versions`). A page has a few channels: an array, not a set.
public struct ChannelVersions: Sendable, Equatable, RandomAccessCollection, ExpressibleByArrayLiteral {
    public private(set) var entries: [ChannelVersion]

    public init(_ entries: [ChannelVersion] = []) { self.entries = entries }
    public init(arrayLiteral elements: ChannelVersion...) { entries = elements }

    public var startIndex: Int { entries.startIndex }
    public var endIndex: Int { entries.endIndex }
    public subscript(i: Int) -> ChannelVersion { entries[i] }

    /// The version given for `channel`, if it is one of these.
    public func version(of channel: Channel) -> UInt64? {
        entries.first { $0.channel == channel }?.version
    }

    /// Adds `channel` at `version` unless it is already here (a page records each channel once,
    /// at the version it had when its first region showing it was built).
    public mutating func record(_ channel: Channel, at version: UInt64) {
        if !entries.contains(where: { $0.channel == channel }) { entries.append(ChannelVersion(channel, version)) }
    }

    /// The same channels at the versions `version(channel)` gives.
    public func updated(_ version: (Channel) -> UInt64) -> ChannelVersions {
        ChannelVersions(entries.map { ChannelVersion($0.channel, version($0.channel)) })
    }

    /// The same channels at the versions of `versions`, but never below their own (for
    /// global versions that only go up: a mirror that lags behind the page's).
    func updated(to versions: [Channel: UInt64]) -> ChannelVersions {
        ChannelVersions(entries.map { ChannelVersion($0.channel, Swift.max($0.version, versions[$0.channel] ?? 0)) })
    }

    /// Whether `channel` is one of these at a version other than the one `current` has for it
    /// (`current` holds the same channels in the same order, at later versions).
    public func changed(_ channel: Channel, in current: ChannelVersions) -> Bool {
        for i in entries.indices where entries[i].version != current.entries[i].version && entries[i].channel == channel { return true }
        return false
    }

    /// Whether `current` (the same channels) has any of them at another version.
    public func differs(from current: ChannelVersions) -> Bool {
        for i in entries.indices where entries[i].version != current.entries[i].version { return true }
        return false
    }

    /// Parses what polls send: `name|version` pairs separated by `;`; nil when malformed.
    public init?(parsing text: String) {
        var parsed: [ChannelVersion] = []
        for part in text.split(separator: ";") {
            guard let bar = part.lastIndex(of: "|"), let v = UInt64(part[part.index(after: bar)...]) else { return nil }
            parsed.append(ChannelVersion(Channel(String(part[..<bar])), v))
        }
        entries = parsed
    }
}

extension HTMLOutput {
    /// `name|version;name|version…` inside an attribute value: what pages carry in
    /// `data-nt-channels` and answers in `data-nt-versions`, and polls send back.
    mutating func appendChannelVersions(_ versions: ChannelVersions) {
        for (i, entry) in versions.entries.enumerated() {
            if i > 0 { append(";") }
            appendAttributeValue(entry.channel.name)
            append("|")
            appendDecimal(Int(truncatingIfNeeded: entry.version))
        }
    }
}
