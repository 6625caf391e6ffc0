import Foundation

/// Text cut to a number of UTF-8 bytes, never inside a scalar, ending in `…` when cut:
/// the one way cancelwatch bounds what it logs, stores, shows or sends. Scrubbing secrets
/// is ``SecretScrubber``'s job and comes first.
public enum TextCut {
    /// What a cut text ends in; ``SecretScrubber`` takes out a secret's start before it.
    public static let marker = "…"

    /// The longest error text kept or logged, in bytes: what came from outside (a reply, a
    /// marketplace's message) is cut to this, after scrubbing.
    public static let errorTextLimit = 1024

    /// `text` itself if it has at most `limit` UTF-8 bytes; otherwise its longest start of
    /// whole scalars that leaves room for the marker, then `…` (at most `limit` bytes in all).
    public static func cut(_ text: String, limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        return joined(text.unicodeScalars.lazy.map(String.init), limit: limit)
    }

    /// `pieces` joined, each kept whole or not at all (an escape such as `\u{1B}`), cut as
    /// ``cut(_:limit:)`` cuts; no piece past the cut is read.
    public static func joined(_ pieces: some Sequence<String>, limit: Int) -> String {
        let room = max(0, limit - marker.utf8.count)
        var out = ""
        var size = 0
        var cutAt: String.Index?
        for piece in pieces {
            let length = piece.utf8.count
            if cutAt == nil, size + length > room { cutAt = out.endIndex }
            size += length
            if size > limit { return String(out[..<(cutAt ?? out.endIndex)]) + marker }
            out += piece
        }
        return out
    }
}
